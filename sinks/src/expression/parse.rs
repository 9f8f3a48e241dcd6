//! Spark SQL text → [`Expr`], with `sqlparser`'s Spark dialect; every construct outside
//! the [supported subset](super) is an error that names it.

use sqlparser::ast::{
    self, BinaryOperator, CastKind, DataType, FunctionArg, FunctionArgExpr, FunctionArguments,
    InTarget, UnaryOperator, Value,
};
use sqlparser::dialect::SparkSqlDialect;
use sqlparser::parser::Parser;

use super::{Arithmetic, Compare, DatePart, Expr, Function, IsTest, Literal, Type};

/// Parses `sql`, resolving column names (case-insensitively, as Spark does) against
/// `columns`. The error says what is wrong or not supported.
pub fn parse(sql: &str, columns: &[&str]) -> Result<Expr, String> {
    let parsed = Parser::new(&SparkSqlDialect {})
        .try_with_sql(sql)
        .and_then(|mut parser| {
            let expr = parser.parse_expr()?;
            parser.expect_token(&sqlparser::tokenizer::Token::EOF)?;
            Ok(expr)
        })
        .map_err(|e| format!("it does not parse: {e}"))?;
    Converter { columns }.expr(&parsed)
}

struct Converter<'a> {
    columns: &'a [&'a str],
}

fn boxed(expr: Expr) -> Box<Expr> {
    Box::new(expr)
}

impl Converter<'_> {
    fn expr(&self, expr: &ast::Expr) -> Result<Expr, String> {
        use ast::Expr as E;
        Ok(match expr {
            E::Identifier(ident) => self.column(&ident.value)?,
            E::CompoundIdentifier(parts) => {
                let name: Vec<&str> = parts.iter().map(|p| p.value.as_str()).collect();
                return Err(format!(
                    "`{}` names a nested field or another table, which is not supported",
                    name.join(".")
                ));
            }
            E::Nested(inner) => self.expr(inner)?,
            // delta-rs writes identifiers in double quotes (`"accountId" > 0`), which
            // Spark reads as a string: a double-quoted name of a column is the column.
            E::Value(value) => match &value.value {
                Value::DoubleQuotedString(name) if self.column(name).is_ok() => {
                    self.column(name)?
                }
                other => Expr::Literal(literal(other)?),
            },
            E::TypedString(typed) => typed_literal(&typed.data_type, &typed.value.value)?,
            E::UnaryOp { op, expr } => {
                let inner = self.expr(expr)?;
                match op {
                    UnaryOperator::Not => Expr::Not(boxed(inner)),
                    UnaryOperator::Minus => match inner {
                        Expr::Literal(Literal::Long(n)) => Expr::Literal(Literal::Long(-n)),
                        Expr::Literal(Literal::Double(x)) => Expr::Literal(Literal::Double(-x)),
                        other => Expr::Negate(boxed(other)),
                    },
                    UnaryOperator::Plus => inner,
                    other => return Err(format!("the operator {other} is not supported")),
                }
            }
            E::BinaryOp { left, op, right } => self.binary(left, op, right)?,
            E::IsNull(e) => self.is(e, IsTest::Null, false)?,
            E::IsNotNull(e) => self.is(e, IsTest::Null, true)?,
            E::IsTrue(e) => self.is(e, IsTest::True, false)?,
            E::IsNotTrue(e) => self.is(e, IsTest::True, true)?,
            E::IsFalse(e) => self.is(e, IsTest::False, false)?,
            E::IsNotFalse(e) => self.is(e, IsTest::False, true)?,
            E::IsUnknown(e) => self.is(e, IsTest::Null, false)?,
            E::IsNotUnknown(e) => self.is(e, IsTest::Null, true)?,
            E::IsNotDistinctFrom(a, b) => Expr::Compare(
                Compare::NullSafeEq,
                boxed(self.expr(a)?),
                boxed(self.expr(b)?),
            ),
            E::IsDistinctFrom(a, b) => Expr::Not(boxed(Expr::Compare(
                Compare::NullSafeEq,
                boxed(self.expr(a)?),
                boxed(self.expr(b)?),
            ))),
            E::In {
                expr,
                target: InTarget::List(list),
                negated,
                ..
            } => Expr::InList {
                expr: boxed(self.expr(expr)?),
                list: list
                    .iter()
                    .map(|e| self.expr(e))
                    .collect::<Result<_, _>>()?,
                negated: *negated,
            },
            E::Between {
                expr,
                negated,
                low,
                high,
            } => {
                let value = self.expr(expr)?;
                let within = Expr::And(
                    boxed(Expr::Compare(
                        Compare::GtEq,
                        boxed(value.clone()),
                        boxed(self.expr(low)?),
                    )),
                    boxed(Expr::Compare(
                        Compare::LtEq,
                        boxed(value),
                        boxed(self.expr(high)?),
                    )),
                );
                if *negated {
                    Expr::Not(boxed(within))
                } else {
                    within
                }
            }
            E::Like {
                negated,
                any: false,
                expr,
                pattern,
                escape_char: None,
            } => self.like(expr, pattern, *negated, false)?,
            E::ILike {
                negated,
                any: false,
                expr,
                pattern,
                escape_char: None,
            } => self.like(expr, pattern, *negated, true)?,
            E::Cast {
                kind: CastKind::Cast | CastKind::DoubleColon,
                expr,
                data_type,
                format: None,
            } => Expr::Cast(boxed(self.expr(expr)?), type_of(data_type)?),
            E::Substring {
                expr,
                substring_from,
                substring_for,
                ..
            } => {
                let mut args = vec![self.expr(expr)?];
                for part in [substring_from, substring_for].into_iter().flatten() {
                    args.push(self.expr(part)?);
                }
                if args.len() == 1 {
                    return Err("substring needs a position".to_owned());
                }
                Expr::Call(Function::Substring, args)
            }
            E::Trim {
                trim_where: None,
                trim_what: None,
                expr,
                trim_characters: None,
            } => Expr::Call(Function::Trim, vec![self.expr(expr)?]),
            E::Function(function) => self.function(function)?,
            E::Case {
                operand,
                conditions,
                else_result,
                ..
            } => {
                let operand = operand.as_deref().map(|o| self.expr(o)).transpose()?;
                let branches = conditions
                    .iter()
                    .map(|when| {
                        let condition = self.expr(&when.condition)?;
                        let condition = match &operand {
                            Some(o) => {
                                Expr::Compare(Compare::Eq, boxed(o.clone()), boxed(condition))
                            }
                            None => condition,
                        };
                        Ok((condition, self.expr(&when.result)?))
                    })
                    .collect::<Result<Vec<_>, String>>()?;
                let otherwise = else_result
                    .as_deref()
                    .map(|e| self.expr(e).map(boxed))
                    .transpose()?;
                Expr::Case {
                    branches,
                    otherwise,
                }
            }
            other => return Err(format!("`{other}` is not supported")),
        })
    }

    /// The table column named `name`: the exact spelling if there is one, else the only
    /// one equal to it ignoring case.
    fn column(&self, name: &str) -> Result<Expr, String> {
        if let Some(exact) = self.columns.iter().find(|c| **c == name) {
            return Ok(Expr::Column((*exact).to_owned()));
        }
        let matches: Vec<&&str> = self
            .columns
            .iter()
            .filter(|c| c.eq_ignore_ascii_case(name))
            .collect();
        match matches.as_slice() {
            [one] => Ok(Expr::Column((**one).to_owned())),
            [] => Err(format!(
                "the table has no column `{name}` (it has {})",
                self.columns.join(", ")
            )),
            _ => Err(format!("`{name}` matches several columns ignoring case")),
        }
    }

    fn binary(
        &self,
        left: &ast::Expr,
        op: &BinaryOperator,
        right: &ast::Expr,
    ) -> Result<Expr, String> {
        let (l, r) = (boxed(self.expr(left)?), boxed(self.expr(right)?));
        let compare = |c| Ok(Expr::Compare(c, l.clone(), r.clone()));
        let arithmetic = |a| Ok(Expr::Arithmetic(a, l.clone(), r.clone()));
        match op {
            BinaryOperator::And => Ok(Expr::And(l, r)),
            BinaryOperator::Or => Ok(Expr::Or(l, r)),
            BinaryOperator::Eq => compare(Compare::Eq),
            BinaryOperator::NotEq => compare(Compare::NotEq),
            BinaryOperator::Lt => compare(Compare::Lt),
            BinaryOperator::LtEq => compare(Compare::LtEq),
            BinaryOperator::Gt => compare(Compare::Gt),
            BinaryOperator::GtEq => compare(Compare::GtEq),
            BinaryOperator::Spaceship => compare(Compare::NullSafeEq),
            BinaryOperator::Plus => arithmetic(Arithmetic::Add),
            BinaryOperator::Minus => arithmetic(Arithmetic::Subtract),
            BinaryOperator::Multiply => arithmetic(Arithmetic::Multiply),
            BinaryOperator::Divide => arithmetic(Arithmetic::Divide),
            BinaryOperator::Modulo => arithmetic(Arithmetic::Remainder),
            BinaryOperator::StringConcat => Ok(Expr::Concat(vec![*l, *r])),
            other => Err(format!("the operator {other} is not supported")),
        }
    }

    fn is(&self, expr: &ast::Expr, test: IsTest, negated: bool) -> Result<Expr, String> {
        Ok(Expr::Is {
            expr: boxed(self.expr(expr)?),
            test,
            negated,
        })
    }

    fn like(
        &self,
        expr: &ast::Expr,
        pattern: &ast::Expr,
        negated: bool,
        case_insensitive: bool,
    ) -> Result<Expr, String> {
        Ok(Expr::Like {
            expr: boxed(self.expr(expr)?),
            pattern: boxed(self.expr(pattern)?),
            negated,
            case_insensitive,
        })
    }

    fn function(&self, function: &ast::Function) -> Result<Expr, String> {
        let name = function.name.to_string().to_ascii_lowercase();
        let FunctionArguments::List(list) = &function.args else {
            return Err(format!("`{function}` is not supported"));
        };
        if list.duplicate_treatment.is_some()
            || !list.clauses.is_empty()
            || function.filter.is_some()
            || function.over.is_some()
        {
            return Err(format!("`{function}` is not supported"));
        }
        let args = list
            .args
            .iter()
            .map(|arg| match arg {
                FunctionArg::Unnamed(FunctionArgExpr::Expr(e)) => self.expr(e),
                other => Err(format!("the argument `{other}` is not supported")),
            })
            .collect::<Result<Vec<Expr>, String>>()?;
        // `None`: concat, which is `||` of its arguments.
        let (function, arity) = match name.as_str() {
            "length" | "char_length" | "character_length" | "len" => {
                (Some(Function::Length), 1..=1)
            }
            "lower" | "lcase" => (Some(Function::Lower), 1..=1),
            "upper" | "ucase" => (Some(Function::Upper), 1..=1),
            "trim" => (Some(Function::Trim), 1..=1),
            "abs" => (Some(Function::Abs), 1..=1),
            "coalesce" | "nvl" | "ifnull" => (Some(Function::Coalesce), 1..=usize::MAX),
            "concat" => (None, 1..=usize::MAX),
            "substring" | "substr" => (Some(Function::Substring), 2..=3),
            "to_date" => (Some(Function::ToDate), 1..=1),
            "date_format" => (Some(Function::DateFormat(String::new())), 2..=2),
            "year" => (Some(Function::Part(DatePart::Year)), 1..=1),
            "month" => (Some(Function::Part(DatePart::Month)), 1..=1),
            "day" | "dayofmonth" => (Some(Function::Part(DatePart::Day)), 1..=1),
            "hour" => (Some(Function::Part(DatePart::Hour)), 1..=1),
            "minute" => (Some(Function::Part(DatePart::Minute)), 1..=1),
            "second" => (Some(Function::Part(DatePart::Second)), 1..=1),
            _ => return Err(format!("the function {name} is not supported")),
        };
        if !arity.contains(&args.len()) {
            let takes = match (arity.start(), arity.end()) {
                (a, b) if a == b => a.to_string(),
                (a, &usize::MAX) => format!("at least {a}"),
                (a, b) => format!("{a} to {b}"),
            };
            return Err(format!(
                "{name} takes {takes} arguments, not {}",
                args.len()
            ));
        }
        Ok(match function {
            None => Expr::Concat(args),
            Some(Function::DateFormat(_)) => {
                let Expr::Literal(Literal::String(pattern)) = &args[1] else {
                    return Err("date_format's pattern must be a string literal".to_owned());
                };
                let chrono = java_date_pattern(pattern)?;
                Expr::Call(Function::DateFormat(chrono), vec![args[0].clone()])
            }
            Some(function) => Expr::Call(function, args),
        })
    }
}

fn literal(value: &Value) -> Result<Literal, String> {
    Ok(match value {
        Value::Null => Literal::Null,
        Value::Boolean(b) => Literal::Boolean(*b),
        Value::Number(text, long) => number(text, *long)?,
        Value::SingleQuotedString(s) | Value::DoubleQuotedString(s) => Literal::String(s.clone()),
        other => return Err(format!("the literal {other} is not supported")),
    })
}

/// A numeric literal: an integer is a `BIGINT` (`L` suffix allowed), anything with a
/// fraction or an exponent (or a `D` suffix) a `DOUBLE`.
fn number(text: &str, long_suffix: bool) -> Result<Literal, String> {
    let bad = || format!("the number {text} is not supported");
    if long_suffix || text.bytes().all(|b| b.is_ascii_digit()) {
        return text.parse().map(Literal::Long).map_err(|_| bad());
    }
    let text = text.trim_end_matches(['d', 'D']);
    text.parse::<f64>()
        .ok()
        .filter(|x| x.is_finite())
        .map(Literal::Double)
        .ok_or_else(bad)
}

fn typed_literal(data_type: &DataType, value: &Value) -> Result<Expr, String> {
    let text = match value {
        Value::SingleQuotedString(s) | Value::DoubleQuotedString(s) => s,
        other => return Err(format!("the literal {data_type} {other} is not supported")),
    };
    let literal = match type_of(data_type)? {
        Type::Date => chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d")
            .ok()
            .and_then(|d| {
                let days = d
                    .signed_duration_since(chrono::NaiveDate::default())
                    .num_days();
                i32::try_from(days).ok()
            })
            .map(Literal::Date)
            .ok_or_else(|| format!("DATE '{text}' is not a date (yyyy-MM-dd)"))?,
        Type::Timestamp => Literal::Timestamp(
            timestamp_micros(text)
                .ok_or_else(|| format!("TIMESTAMP '{text}' is not a timestamp"))?,
        ),
        other => {
            return Err(format!(
                "typed literals of type {other:?} are not supported"
            ));
        }
    };
    Ok(Expr::Literal(literal))
}

/// µs since the epoch of a timestamp string: RFC 3339, or `yyyy-MM-dd[ HH:mm:ss[.f]]`
/// read in UTC.
pub(super) fn timestamp_micros(text: &str) -> Option<i64> {
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(text) {
        return Some(t.timestamp_micros());
    }
    for format in [
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M",
    ] {
        if let Ok(t) = chrono::NaiveDateTime::parse_from_str(text, format) {
            return Some(t.and_utc().timestamp_micros());
        }
    }
    chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| t.and_utc().timestamp_micros())
}

fn type_of(data_type: &DataType) -> Result<Type, String> {
    Ok(match data_type {
        DataType::Boolean | DataType::Bool => Type::Boolean,
        DataType::TinyInt(_)
        | DataType::SmallInt(_)
        | DataType::Int(_)
        | DataType::Integer(_)
        | DataType::BigInt(_) => Type::Long,
        DataType::Double(_) | DataType::Float(_) | DataType::Real => Type::Double,
        DataType::String(_) | DataType::Varchar(_) | DataType::Char(_) | DataType::Text => {
            Type::String
        }
        DataType::Date => Type::Date,
        DataType::Timestamp(_, _) => Type::Timestamp,
        DataType::Custom(name, args) if args.is_empty() => {
            match name.to_string().to_ascii_lowercase().as_str() {
                "long" => Type::Long,
                "short" | "byte" => Type::Long,
                _ => return Err(format!("the type {data_type} is not supported")),
            }
        }
        other => return Err(format!("the type {other} is not supported")),
    })
}

/// A Java `DateTimeFormatter` pattern (as Spark's `date_format` takes) as a chrono
/// format string, for the letters `yyyy`, `MM`, `dd`, `HH`, `mm`, `ss` and `SSS`, and
/// literal punctuation.
fn java_date_pattern(pattern: &str) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = pattern;
    while let Some(c) = rest.chars().next() {
        let run = rest.chars().take_while(|&d| d == c).count();
        let token = &rest[..run * c.len_utf8()];
        match token {
            "yyyy" => out.push_str("%Y"),
            "MM" => out.push_str("%m"),
            "dd" => out.push_str("%d"),
            "HH" => out.push_str("%H"),
            "mm" => out.push_str("%M"),
            "ss" => out.push_str("%S"),
            "SSS" => out.push_str("%3f"),
            _ if !c.is_ascii_alphabetic() && c != '%' && c != '\'' => out.push_str(token),
            _ => {
                return Err(format!(
                    "the date_format pattern '{pattern}' uses `{token}`, which is not supported"
                ));
            }
        }
        rest = &rest[token.len()..];
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const COLUMNS: &[&str] = &["dt", "accountId", "amount", "alert", "date"];

    fn p(sql: &str) -> Result<Expr, String> {
        parse(sql, COLUMNS)
    }

    fn col(name: &str) -> Box<Expr> {
        boxed(Expr::Column(name.to_owned()))
    }

    fn lit(literal: Literal) -> Box<Expr> {
        boxed(Expr::Literal(literal))
    }

    #[test]
    fn columns_resolve_ignoring_case_and_literals_are_typed() {
        assert_eq!(
            p("AMOUNT > 0"),
            Ok(Expr::Compare(
                Compare::Gt,
                col("amount"),
                lit(Literal::Long(0))
            ))
        );
        assert_eq!(
            p("`accountid` <> 'x' AND amount <= -1.5"),
            Ok(Expr::And(
                boxed(Expr::Compare(
                    Compare::NotEq,
                    col("accountId"),
                    lit(Literal::String("x".into()))
                )),
                boxed(Expr::Compare(
                    Compare::LtEq,
                    col("amount"),
                    lit(Literal::Double(-1.5))
                ))
            ))
        );
        assert_eq!(
            p(r#""accountId" != 'x' AND "no column" = 'y'"#),
            Ok(Expr::And(
                boxed(Expr::Compare(
                    Compare::NotEq,
                    col("accountId"),
                    lit(Literal::String("x".into()))
                )),
                boxed(Expr::Compare(
                    Compare::Eq,
                    lit(Literal::String("no column".into())),
                    lit(Literal::String("y".into()))
                ))
            ))
        );
        assert_eq!(
            p("dt >= TIMESTAMP '2024-05-01 00:00:00'"),
            Ok(Expr::Compare(
                Compare::GtEq,
                col("dt"),
                lit(Literal::Timestamp(1_714_521_600_000_000))
            ))
        );
        assert_eq!(
            p("date <=> DATE_FORMAT(dt, 'yyyy-MM-dd')"),
            Ok(Expr::Compare(
                Compare::NullSafeEq,
                col("date"),
                boxed(Expr::Call(
                    Function::DateFormat("%Y-%m-%d".into()),
                    vec![Expr::Column("dt".into())]
                ))
            ))
        );
    }

    #[test]
    fn what_is_not_supported_is_named() {
        for (sql, says) in [
            ("nope > 1", "no column `nope`"),
            ("t.amount > 1", "`t.amount` names a nested field"),
            ("amount >", "does not parse"),
            ("amount > 1 garbage", "does not parse"),
            (
                "sha2(accountId, 256) = 'x'",
                "the function sha2 is not supported",
            ),
            ("amount IN (SELECT 1)", "is not supported"),
            ("date_format(dt, 'EEE') = 'Mon'", "uses `EEE`"),
            (
                "length(accountId, 2) > 1",
                "length takes 1 arguments, not 2",
            ),
        ] {
            let err = p(sql).expect_err(sql);
            assert!(err.contains(says), "{sql}: {err}");
        }
    }
}
