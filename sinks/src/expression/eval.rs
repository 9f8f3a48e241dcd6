//! [`Expr`] over a [`RecordBatch`]: every node becomes an array of the batch's length,
//! computed with Arrow's kernels where they have Spark's semantics, and by hand where
//! they do not (characters rather than bytes, NULL for a zero divisor, …).

use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, Date32Array, Float64Array, Int64Array, StringArray,
    TimestampMicrosecondArray, new_null_array,
};
use arrow::compute::kernels::boolean::{and_kleene, is_not_null, is_null, not, or_kleene};
use arrow::compute::kernels::cmp;
use arrow::compute::kernels::comparison::{ilike, like, nilike, nlike};
use arrow::compute::kernels::numeric;
use arrow::compute::kernels::temporal::{DatePart as ArrowDatePart, date_part};
use arrow::compute::kernels::zip::zip;
use arrow::compute::{CastOptions, cast_with_options, nullif};
use arrow::datatypes::{DataType, TimeUnit};
use arrow::record_batch::RecordBatch;

use super::parse::timestamp_micros;
use super::{Arithmetic, Compare, DatePart, Expr, Function, IsTest, Literal, Type};

type Result<T> = std::result::Result<T, String>;

/// Evaluates `expr` on every row of `batch`, which must hold every column `expr` names.
/// The result has the batch's length; a predicate's is a [`BooleanArray`].
pub fn eval(expr: &Expr, batch: &RecordBatch) -> Result<ArrayRef> {
    Evaluator {
        batch,
        rows: batch.num_rows(),
    }
    .eval(expr)
}

struct Evaluator<'a> {
    batch: &'a RecordBatch,
    rows: usize,
}

/// The Arrow type of a [`Type`].
fn arrow_type(t: Type) -> DataType {
    match t {
        Type::Boolean => DataType::Boolean,
        Type::Long => DataType::Int64,
        Type::Double => DataType::Float64,
        Type::String => DataType::Utf8,
        Type::Date => DataType::Date32,
        // UTC µs, without a zone: Arrow's kernels parse zone names only with chrono-tz.
        Type::Timestamp => DataType::Timestamp(TimeUnit::Microsecond, None),
    }
}

/// The [`Type`] an Arrow type computes as, if it has one (smaller integers widen to
/// `BIGINT`, `FLOAT` to `DOUBLE`, every timestamp to µs in UTC).
fn type_of(data_type: &DataType) -> Option<Type> {
    Some(match data_type {
        DataType::Boolean => Type::Boolean,
        DataType::Int8
        | DataType::Int16
        | DataType::Int32
        | DataType::Int64
        | DataType::UInt8
        | DataType::UInt16
        | DataType::UInt32 => Type::Long,
        DataType::Float16 | DataType::Float32 | DataType::Float64 => Type::Double,
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => Type::String,
        DataType::Date32 | DataType::Date64 => Type::Date,
        DataType::Timestamp(_, _) => Type::Timestamp,
        _ => return None,
    })
}

/// Casts `array` to `t` (values that do not convert become NULL, as in Spark).
pub(crate) fn cast_to(array: &ArrayRef, t: Type) -> Result<ArrayRef> {
    let target = arrow_type(t);
    if array.data_type() == &target {
        return Ok(Arc::clone(array));
    }
    if let DataType::Timestamp(unit, _) = array.data_type()
        && t == Type::Timestamp
    {
        // Every timestamp is UTC µs here: rescale, and drop the zone.
        let scale = |v: i64| match unit {
            TimeUnit::Second => v.saturating_mul(1_000_000),
            TimeUnit::Millisecond => v.saturating_mul(1_000),
            TimeUnit::Microsecond => v,
            TimeUnit::Nanosecond => v.div_euclid(1_000),
        };
        let values = cast_with_options(array, &DataType::Int64, &CastOptions::default())
            .map_err(|e| e.to_string())?;
        let micros: TimestampMicrosecondArray = values
            .as_primitive::<arrow::datatypes::Int64Type>()
            .unary(scale);
        return Ok(boxed(micros));
    }
    if let DataType::Timestamp(_, Some(_)) = array.data_type() {
        return cast_to(&cast_to(array, Type::Timestamp)?, t);
    }
    if array.data_type() == &DataType::Utf8 && t == Type::Timestamp {
        // Arrow reads zone-less strings in the target zone (UTC) too, but not
        // `yyyy-MM-dd HH:mm` or a bare date the way Spark does.
        let strings = array.as_string::<i32>();
        let micros: TimestampMicrosecondArray = strings
            .iter()
            .map(|s| s.and_then(|s| timestamp_micros(s.trim())))
            .collect();
        return Ok(Arc::new(micros));
    }
    let options = CastOptions {
        safe: true,
        ..CastOptions::default()
    };
    cast_with_options(array, &target, &options).map_err(|e| e.to_string())
}

/// The type two operands are compared or combined as, Spark's way.
fn common_type(a: Option<Type>, b: Option<Type>) -> Result<Option<Type>> {
    use Type::*;
    Ok(match (a, b) {
        (None, other) | (other, None) => other,
        (Some(a), Some(b)) if a == b => Some(a),
        (Some(Long), Some(Double)) | (Some(Double), Some(Long)) => Some(Double),
        (Some(String), Some(Long | Double)) | (Some(Long | Double), Some(String)) => Some(Double),
        (Some(String), Some(Date)) | (Some(Date), Some(String)) => Some(Date),
        (Some(String | Date), Some(Timestamp)) | (Some(Timestamp), Some(String | Date)) => {
            Some(Timestamp)
        }
        (Some(a), Some(b)) => return Err(format!("cannot compare or combine {a:?} with {b:?}")),
    })
}

fn booleans(array: &ArrayRef) -> Result<&BooleanArray> {
    array
        .as_boolean_opt()
        .ok_or_else(|| format!("expected a boolean, found {}", array.data_type()))
}

fn strings(array: &ArrayRef) -> Result<ArrayRef> {
    cast_to(array, Type::String)
}

fn boxed(array: impl Array + 'static) -> ArrayRef {
    Arc::new(array)
}

impl Evaluator<'_> {
    fn eval(&self, expr: &Expr) -> Result<ArrayRef> {
        match expr {
            Expr::Column(name) => self.column(name),
            Expr::Literal(literal) => Ok(self.literal(literal)),
            Expr::Not(e) => Ok(boxed(not(&self.predicate(e)?).map_err(|e| e.to_string())?)),
            Expr::Negate(e) => {
                let value = self.eval(e)?;
                let value = match type_of(value.data_type()) {
                    Some(Type::Long) => cast_to(&value, Type::Long)?,
                    Some(Type::String) => cast_to(&value, Type::Double)?,
                    _ => value,
                };
                numeric::neg_wrapping(&value).map_err(|e| e.to_string())
            }
            Expr::And(a, b) => self.logic(a, b, and_kleene),
            Expr::Or(a, b) => self.logic(a, b, or_kleene),
            Expr::Compare(op, a, b) => self.compare(*op, a, b),
            Expr::Arithmetic(op, a, b) => self.arithmetic(*op, a, b),
            Expr::Concat(parts) => self.concat(parts),
            Expr::Is {
                expr,
                test,
                negated,
            } => self.is(expr, *test, *negated),
            Expr::InList {
                expr,
                list,
                negated,
            } => self.in_list(expr, list, *negated),
            Expr::Like {
                expr,
                pattern,
                negated,
                case_insensitive,
            } => {
                let value = strings(&self.eval(expr)?)?;
                let pattern = strings(&self.eval(pattern)?)?;
                let kernel = match (negated, case_insensitive) {
                    (false, false) => like,
                    (false, true) => ilike,
                    (true, false) => nlike,
                    (true, true) => nilike,
                };
                Ok(boxed(kernel(&value, &pattern).map_err(|e| e.to_string())?))
            }
            Expr::Cast(e, t) => cast_to(&self.eval(e)?, *t),
            Expr::Call(function, args) => self.call(function, args),
            Expr::Case {
                branches,
                otherwise,
            } => self.case(branches, otherwise.as_deref()),
        }
    }

    fn column(&self, name: &str) -> Result<ArrayRef> {
        let array = self
            .batch
            .column_by_name(name)
            .ok_or_else(|| format!("the batch has no column `{name}`"))?;
        let t = type_of(array.data_type())
            .ok_or_else(|| format!("column `{name}` is of type {}", array.data_type()))?;
        cast_to(array, t)
    }

    fn literal(&self, literal: &Literal) -> ArrayRef {
        let n = self.rows;
        match literal {
            Literal::Null => new_null_array(&DataType::Null, n),
            Literal::Boolean(b) => boxed(BooleanArray::from(vec![*b; n])),
            Literal::Long(v) => boxed(Int64Array::from_value(*v, n)),
            Literal::Double(v) => boxed(Float64Array::from_value(*v, n)),
            Literal::String(s) => boxed(StringArray::from_iter_values(std::iter::repeat_n(s, n))),
            Literal::Date(d) => boxed(Date32Array::from_value(*d, n)),
            Literal::Timestamp(t) => boxed(TimestampMicrosecondArray::from_value(*t, n)),
        }
    }

    /// Both operands, cast to their common type (a NULL literal takes the other's).
    fn operands(&self, a: &Expr, b: &Expr) -> Result<(ArrayRef, ArrayRef)> {
        let (a, b) = (self.eval(a)?, self.eval(b)?);
        match common_type(type_of(a.data_type()), type_of(b.data_type()))? {
            Some(t) => Ok((cast_to(&a, t)?, cast_to(&b, t)?)),
            None => Ok((a, b)),
        }
    }

    fn logic(
        &self,
        a: &Expr,
        b: &Expr,
        kernel: fn(
            &BooleanArray,
            &BooleanArray,
        ) -> std::result::Result<BooleanArray, arrow::error::ArrowError>,
    ) -> Result<ArrayRef> {
        let (a, b) = (self.predicate(a)?, self.predicate(b)?);
        Ok(boxed(kernel(&a, &b).map_err(|e| e.to_string())?))
    }

    /// `expr` as booleans; a NULL literal is a NULL boolean.
    fn predicate(&self, expr: &Expr) -> Result<BooleanArray> {
        let value = self.eval(expr)?;
        if value.data_type() == &DataType::Null {
            return Ok(BooleanArray::new_null(self.rows));
        }
        booleans(&value).cloned()
    }

    fn compare(&self, op: Compare, a: &Expr, b: &Expr) -> Result<ArrayRef> {
        let (a, b) = self.operands(a, b)?;
        if a.data_type() == &DataType::Null || b.data_type() == &DataType::Null {
            return Ok(match op {
                Compare::NullSafeEq => {
                    let a_null = is_null(&a).map_err(|e| e.to_string())?;
                    let b_null = is_null(&b).map_err(|e| e.to_string())?;
                    boxed(cmp::eq(&a_null, &b_null).map_err(|e| e.to_string())?)
                }
                _ => boxed(BooleanArray::new_null(self.rows)),
            });
        }
        let result = match op {
            Compare::Eq => cmp::eq(&a, &b),
            Compare::NotEq => cmp::neq(&a, &b),
            Compare::Lt => cmp::lt(&a, &b),
            Compare::LtEq => cmp::lt_eq(&a, &b),
            Compare::Gt => cmp::gt(&a, &b),
            Compare::GtEq => cmp::gt_eq(&a, &b),
            Compare::NullSafeEq => cmp::not_distinct(&a, &b),
        };
        Ok(boxed(result.map_err(|e| e.to_string())?))
    }

    fn arithmetic(&self, op: Arithmetic, a: &Expr, b: &Expr) -> Result<ArrayRef> {
        let (a, b) = self.operands(a, b)?;
        let (a, b) = match (op, type_of(a.data_type())) {
            (Arithmetic::Divide, _) | (_, Some(Type::String)) | (_, None) => {
                (cast_to(&a, Type::Double)?, cast_to(&b, Type::Double)?)
            }
            (_, Some(Type::Long | Type::Double)) => (a, b),
            (_, Some(t)) => return Err(format!("arithmetic on {t:?} is not supported")),
        };
        let result = match op {
            Arithmetic::Add => numeric::add_wrapping(&a, &b),
            Arithmetic::Subtract => numeric::sub_wrapping(&a, &b),
            Arithmetic::Multiply => numeric::mul_wrapping(&a, &b),
            Arithmetic::Divide | Arithmetic::Remainder => {
                // Spark (non-ANSI): a zero divisor gives NULL, not an error or infinity.
                let zero = cmp::eq(&b, &arrow::array::Scalar::new(zero_of(&b)))
                    .map_err(|e| e.to_string())?;
                let b = nullif(&b, &zero).map_err(|e| e.to_string())?;
                if op == Arithmetic::Divide {
                    numeric::div(&a, &b)
                } else {
                    numeric::rem(&a, &b)
                }
            }
        };
        result.map_err(|e| e.to_string())
    }

    fn concat(&self, parts: &[Expr]) -> Result<ArrayRef> {
        let parts = parts
            .iter()
            .map(|p| strings(&self.eval(p)?))
            .collect::<Result<Vec<ArrayRef>>>()?;
        let parts: Vec<&StringArray> = parts.iter().map(|p| p.as_string::<i32>()).collect();
        let joined: StringArray = (0..self.rows)
            .map(|i| {
                let mut text = String::new();
                for part in &parts {
                    text.push_str(part.is_valid(i).then(|| part.value(i))?);
                }
                Some(text)
            })
            .collect();
        Ok(boxed(joined))
    }

    fn is(&self, expr: &Expr, test: IsTest, negated: bool) -> Result<ArrayRef> {
        let value = self.eval(expr)?;
        let result = match test {
            IsTest::Null => is_null(&value),
            IsTest::True | IsTest::False => {
                if value.data_type() == &DataType::Null {
                    Ok(BooleanArray::from(vec![false; self.rows]))
                } else {
                    let value = booleans(&value)?;
                    let want = test == IsTest::True;
                    Ok((0..self.rows)
                        .map(|i| Some(value.is_valid(i) && value.value(i) == want))
                        .collect())
                }
            }
        }
        .map_err(|e| e.to_string())?;
        if negated {
            Ok(boxed(not(&result).map_err(|e| e.to_string())?))
        } else {
            Ok(boxed(result))
        }
    }

    fn in_list(&self, expr: &Expr, list: &[Expr], negated: bool) -> Result<ArrayRef> {
        let mut any = BooleanArray::from(vec![false; self.rows]);
        for candidate in list {
            let equal = self.compare(Compare::Eq, expr, candidate)?;
            any = or_kleene(&any, booleans(&equal)?).map_err(|e| e.to_string())?;
        }
        if negated {
            any = not(&any).map_err(|e| e.to_string())?;
        }
        Ok(boxed(any))
    }

    fn case(&self, branches: &[(Expr, Expr)], otherwise: Option<&Expr>) -> Result<ArrayRef> {
        let results = branches
            .iter()
            .map(|(_, result)| self.eval(result))
            .chain(otherwise.map(|e| self.eval(e)))
            .collect::<Result<Vec<_>>>()?;
        let t = results
            .iter()
            .try_fold(None, |t, r| common_type(t, type_of(r.data_type())))?;
        let cast = |r: &ArrayRef| match t {
            Some(t) => cast_to(r, t),
            None => Ok(Arc::clone(r)),
        };
        let mut value = match (otherwise, t) {
            (Some(_), _) => cast(&results[branches.len()])?,
            (None, Some(t)) => new_null_array(&arrow_type(t), self.rows),
            (None, None) => new_null_array(&DataType::Null, self.rows),
        };
        // Later branches first, so that an earlier matching branch wins.
        for (i, (condition, _)) in branches.iter().enumerate().rev() {
            let condition = self.predicate(condition)?;
            let taken: BooleanArray = condition.iter().map(|c| Some(c == Some(true))).collect();
            value = zip(&taken, &cast(&results[i])?, &value).map_err(|e| e.to_string())?;
        }
        Ok(value)
    }

    fn call(&self, function: &Function, args: &[Expr]) -> Result<ArrayRef> {
        let values = args
            .iter()
            .map(|a| self.eval(a))
            .collect::<Result<Vec<ArrayRef>>>()?;
        let first = &values[0];
        let map_strings = |f: fn(&str) -> String| -> Result<ArrayRef> {
            let s = strings(first)?;
            let out: StringArray = s.as_string::<i32>().iter().map(|v| v.map(f)).collect();
            Ok(boxed(out))
        };
        match function {
            Function::Length => {
                let s = strings(first)?;
                let out: Int64Array = s
                    .as_string::<i32>()
                    .iter()
                    .map(|v| v.map(|v| v.chars().count() as i64))
                    .collect();
                Ok(boxed(out))
            }
            Function::Lower => map_strings(str::to_lowercase),
            Function::Upper => map_strings(str::to_uppercase),
            Function::Trim => map_strings(|s| s.trim_matches(' ').to_owned()),
            Function::Abs => {
                let value = match type_of(first.data_type()) {
                    Some(Type::Long) | Some(Type::Double) => Arc::clone(first),
                    _ => cast_to(first, Type::Double)?,
                };
                let negative = cmp::lt(&value, &arrow::array::Scalar::new(zero_of(&value)))
                    .map_err(|e| e.to_string())?;
                let negated = numeric::neg_wrapping(&value).map_err(|e| e.to_string())?;
                zip(&negative, &negated, &value).map_err(|e| e.to_string())
            }
            Function::Coalesce => {
                let t = values
                    .iter()
                    .try_fold(None, |t, v| common_type(t, type_of(v.data_type())))?;
                let Some(t) = t else {
                    return Ok(new_null_array(&DataType::Null, self.rows));
                };
                let mut value = new_null_array(&arrow_type(t), self.rows);
                for candidate in values.iter().rev() {
                    let candidate = cast_to(candidate, t)?;
                    let present = is_not_null(&candidate).map_err(|e| e.to_string())?;
                    value = zip(&present, &candidate, &value).map_err(|e| e.to_string())?;
                }
                Ok(value)
            }
            Function::Substring => self.substring(&values),
            Function::DateFormat(format) => {
                let t = cast_to(first, Type::Timestamp)?;
                let t = t.as_primitive::<arrow::datatypes::TimestampMicrosecondType>();
                let out: StringArray = t
                    .iter()
                    .map(|v| {
                        v.and_then(chrono::DateTime::from_timestamp_micros)
                            .map(|t| t.format(format).to_string())
                    })
                    .collect();
                Ok(boxed(out))
            }
            Function::ToDate => cast_to(first, Type::Date),
            Function::Part(part) => {
                let t = match type_of(first.data_type()) {
                    Some(Type::Date)
                        if matches!(part, DatePart::Year | DatePart::Month | DatePart::Day) =>
                    {
                        cast_to(first, Type::Date)?
                    }
                    _ => cast_to(first, Type::Timestamp)?,
                };
                let part = match part {
                    DatePart::Year => ArrowDatePart::Year,
                    DatePart::Month => ArrowDatePart::Month,
                    DatePart::Day => ArrowDatePart::Day,
                    DatePart::Hour => ArrowDatePart::Hour,
                    DatePart::Minute => ArrowDatePart::Minute,
                    DatePart::Second => ArrowDatePart::Second,
                };
                let value = date_part(&t, part).map_err(|e| e.to_string())?;
                cast_to(&value, Type::Long)
            }
        }
    }

    /// Spark's `substring(s, pos[, len])` (`UTF8String.substringSQL`), by characters.
    fn substring(&self, values: &[ArrayRef]) -> Result<ArrayRef> {
        let text = strings(&values[0])?;
        let text = text.as_string::<i32>();
        let pos = cast_to(&values[1], Type::Long)?;
        let pos = pos.as_primitive::<arrow::datatypes::Int64Type>();
        let len = values.get(2).map(|l| cast_to(l, Type::Long)).transpose()?;
        let len = len
            .as_ref()
            .map(|l| l.as_primitive::<arrow::datatypes::Int64Type>());
        let out: StringArray = (0..self.rows)
            .map(|i| {
                if text.is_null(i) || pos.is_null(i) || len.is_some_and(|l| l.is_null(i)) {
                    return None;
                }
                let chars: Vec<char> = text.value(i).chars().collect();
                let n = chars.len() as i64;
                let p = pos.value(i);
                let start = match p {
                    1.. => p - 1,
                    0 => 0,
                    _ => n + p,
                };
                let end = len.map_or(i64::MAX, |l| start.saturating_add(l.value(i)));
                let (start, end) = (start.max(0), end.min(n));
                Some(if start >= end {
                    String::new()
                } else {
                    chars[start as usize..end as usize].iter().collect()
                })
            })
            .collect();
        Ok(boxed(out))
    }
}

/// A one-element zero of `array`'s numeric type.
fn zero_of(array: &ArrayRef) -> ArrayRef {
    match array.data_type() {
        DataType::Int64 => boxed(Int64Array::from(vec![0])),
        _ => boxed(Float64Array::from(vec![0.0])),
    }
}

#[cfg(test)]
mod tests {
    use arrow::datatypes::{Field, Schema};

    use super::super::parse;
    use super::*;

    fn batch() -> RecordBatch {
        let schema = Schema::new(vec![
            Field::new(
                "dt",
                DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
                true,
            ),
            Field::new("accountId", DataType::Utf8, true),
            Field::new("amount", DataType::Float64, true),
            Field::new("n", DataType::Int32, true),
            Field::new("date", DataType::Utf8, true),
        ]);
        let day = 1_714_521_600_000_000i64; // 2024-05-01T00:00:00Z
        RecordBatch::try_new(
            Arc::new(schema),
            vec![
                boxed(
                    TimestampMicrosecondArray::from(vec![
                        Some(day),
                        Some(day + 3_600_000_000),
                        None,
                        Some(day - 1),
                    ])
                    .with_timezone("UTC"),
                ),
                boxed(StringArray::from(vec![
                    Some("Ab"),
                    Some("ü"),
                    None,
                    Some("xyz"),
                ])),
                boxed(Float64Array::from(vec![
                    Some(1.5),
                    Some(-3.0),
                    Some(0.0),
                    None,
                ])),
                boxed(arrow::array::Int32Array::from(vec![
                    Some(7),
                    Some(0),
                    None,
                    Some(-2),
                ])),
                boxed(StringArray::from(vec![
                    Some("2024-05-01"),
                    Some("2024-05-01"),
                    Some("2024-05-01"),
                    Some("2024-04-30"),
                ])),
            ],
        )
        .expect("batch")
    }

    /// The result of `sql` on the test batch as `Some(bool)` per row.
    fn check(sql: &str) -> Vec<Option<bool>> {
        let columns = ["dt", "accountId", "amount", "n", "date"];
        let expr = parse(sql, &columns).unwrap_or_else(|e| panic!("{sql}: {e}"));
        let value = eval(&expr, &batch()).unwrap_or_else(|e| panic!("{sql}: {e}"));
        booleans(&value)
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
            .iter()
            .collect()
    }

    const T: Option<bool> = Some(true);
    const F: Option<bool> = Some(false);
    const N: Option<bool> = None;

    #[test]
    fn comparisons_and_logic_are_three_valued() {
        assert_eq!(check("amount > 0"), [T, F, F, N]);
        assert_eq!(check("amount > 0 OR n > 0"), [T, F, N, N]);
        assert_eq!(check("amount > 0 AND n > 0"), [T, F, F, F]);
        assert_eq!(check("NOT amount > 0"), [F, T, T, N]);
        assert_eq!(check("amount <=> NULL"), [F, F, F, T]);
        assert_eq!(check("amount = NULL"), [N, N, N, N]);
        assert_eq!(check("amount IS NULL OR accountId IS NULL"), [F, F, T, T]);
        assert_eq!(check("n IN (7, -2)"), [T, F, N, T]);
        assert_eq!(check("n NOT IN (7, NULL)"), [F, N, N, N]);
        assert_eq!(check("amount BETWEEN -3 AND 1"), [F, T, T, N]);
        assert_eq!(check("(amount > 0) IS TRUE"), [T, F, F, F]);
        assert_eq!(check("(amount > 0) IS NOT FALSE"), [T, F, F, T]);
        assert_eq!(check("amount IS DISTINCT FROM 0"), [T, T, F, T]);
    }

    #[test]
    fn arithmetic_follows_spark() {
        assert_eq!(check("n / 0 IS NULL"), [T, T, T, T]);
        assert_eq!(check("7 / 2 = 3.5"), [T, T, T, T]);
        assert_eq!(check("n % 3 = 1"), [T, F, N, F]);
        assert_eq!(check("n * 2 + 1 = 15"), [T, F, N, F]);
        assert_eq!(check("-n < 0"), [T, F, N, F]);
        assert_eq!(check("abs(n) = 2"), [F, F, N, T]);
        assert_eq!(check("amount + n > 8"), [T, F, N, N]);
        assert_eq!(check("'2' > n"), [F, T, N, T]);
    }

    #[test]
    fn strings_dates_and_functions() {
        assert_eq!(check("length(accountId) = 1"), [F, T, N, F]);
        assert_eq!(check("lower(accountId) = 'ab'"), [T, F, N, F]);
        assert_eq!(check("upper(accountId) = 'Ü'"), [F, T, N, F]);
        assert_eq!(check("accountId LIKE 'A%'"), [T, F, N, F]);
        assert_eq!(check("accountId ILIKE 'a_'"), [T, F, N, F]);
        assert_eq!(check("accountId NOT LIKE '%z'"), [T, T, N, F]);
        assert_eq!(check("accountId || '!' = 'Ab!'"), [T, F, N, F]);
        assert_eq!(
            check("concat(accountId, date) = 'xyz2024-04-30'"),
            [F, F, N, T]
        );
        assert_eq!(check("substring(accountId, 2) = 'b'"), [T, F, N, F]);
        assert_eq!(check("substring(accountId, -2, 1) = 'y'"), [F, F, N, T]);
        assert_eq!(check("coalesce(accountId, 'none') = 'none'"), [F, F, T, F]);
        assert_eq!(
            check("date <=> date_format(dt, 'yyyy-MM-dd')"),
            [T, T, F, T]
        );
        assert_eq!(check("dt >= '2024-05-01'"), [T, T, N, F]);
        assert_eq!(check("dt < TIMESTAMP '2024-05-01 00:30:00'"), [T, F, N, T]);
        assert_eq!(check("to_date(dt) = DATE '2024-05-01'"), [T, T, N, F]);
        assert_eq!(check("CAST(dt AS DATE) = date"), [T, T, N, T]);
        assert_eq!(check("hour(dt) = 1 AND year(dt) = 2024"), [F, T, N, F]);
        assert_eq!(check("month(date) = 5"), [T, T, T, F]);
        assert_eq!(
            check("CASE WHEN amount > 1 THEN 'big' WHEN amount < 0 THEN 'neg' END = 'neg'"),
            [F, T, N, N]
        );
        assert_eq!(
            check("CASE n WHEN 7 THEN TRUE ELSE FALSE END"),
            [T, F, F, F]
        );
    }
}
