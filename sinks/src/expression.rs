//! SQL expressions over Arrow batches: the Spark SQL that Delta tables store in CHECK
//! constraints, column invariants and generated columns, parsed once ([`parse`]) and
//! evaluated on every batch a writer is about to write ([`eval`]).
//!
//! The subset is what such expressions are written with: column references (by name,
//! case-insensitive, `` `quoted` `` or not; a `"double-quoted"` name of a column, as
//! delta-rs writes them, is the column, any other double-quoted text a string), literals (numbers, `'strings'`, `TRUE`,
//! `FALSE`, `NULL`, `DATE '…'`, `TIMESTAMP '…'`), `AND` / `OR` / `NOT`, comparisons
//! (`=`, `==`, `<>`, `!=`, `<`, `<=`, `>`, `>=`, `<=>`), `+ - * / %`, `||`,
//! `IS [NOT] NULL|TRUE|FALSE`, `IS [NOT] DISTINCT FROM`, `[NOT] IN (…)`,
//! `[NOT] BETWEEN`, `[NOT] LIKE` / `ILIKE`, `CAST(… AS …)`, `CASE WHEN`, and the
//! functions `length`, `lower`, `upper`, `trim`, `abs`, `coalesce`, `concat`,
//! `substring`, `date_format` (with `yyyy`, `MM`, `dd`, `HH`, `mm`, `ss`), `to_date`,
//! `year`, `month`, `day`, `hour`, `minute` and `second`. Anything else is an error
//! naming it, so a table whose constraint tidelake cannot evaluate is refused rather
//! than written unchecked.
//!
//! Semantics are Spark's (non-ANSI mode): three-valued logic, integer literals are
//! `BIGINT` and decimal ones `DOUBLE`, `/` divides as doubles and gives NULL for a zero
//! divisor, integer arithmetic wraps, a string compared with a number is read as a
//! number, with a date or timestamp as one (in UTC).

mod eval;
mod parse;

pub(crate) use eval::cast_to;
pub use eval::eval;
pub use parse::parse;

/// A parsed expression whose columns are resolved against a table's columns.
#[derive(Clone, Debug, PartialEq)]
pub enum Expr {
    /// A column of the table, by its exact name.
    Column(String),
    /// A constant.
    Literal(Literal),
    /// `NOT e`.
    Not(Box<Expr>),
    /// `-e`.
    Negate(Box<Expr>),
    /// `a AND b` (three-valued).
    And(Box<Expr>, Box<Expr>),
    /// `a OR b` (three-valued).
    Or(Box<Expr>, Box<Expr>),
    /// A comparison.
    Compare(Compare, Box<Expr>, Box<Expr>),
    /// Arithmetic.
    Arithmetic(Arithmetic, Box<Expr>, Box<Expr>),
    /// `a || b`.
    Concat(Vec<Expr>),
    /// `e IS [NOT] NULL|TRUE|FALSE`.
    Is {
        /// The tested expression.
        expr: Box<Expr>,
        /// What it is tested for.
        test: IsTest,
        /// `IS NOT`.
        negated: bool,
    },
    /// `e [NOT] IN (list)`.
    InList {
        /// The tested expression.
        expr: Box<Expr>,
        /// The candidates.
        list: Vec<Expr>,
        /// `NOT IN`.
        negated: bool,
    },
    /// `e [NOT] LIKE|ILIKE pattern` (`%`, `_`, `\` escapes).
    Like {
        /// The tested expression.
        expr: Box<Expr>,
        /// The pattern.
        pattern: Box<Expr>,
        /// `NOT LIKE`.
        negated: bool,
        /// `ILIKE`.
        case_insensitive: bool,
    },
    /// `CAST(e AS type)`.
    Cast(Box<Expr>, Type),
    /// A function call.
    Call(Function, Vec<Expr>),
    /// `CASE WHEN c THEN r … [ELSE e] END`.
    Case {
        /// `(condition, result)` in order.
        branches: Vec<(Expr, Expr)>,
        /// The `ELSE` result (NULL without one).
        otherwise: Option<Box<Expr>>,
    },
}

/// A constant.
#[derive(Clone, Debug, PartialEq)]
pub enum Literal {
    /// `NULL`.
    Null,
    /// `TRUE` / `FALSE`.
    Boolean(bool),
    /// An integer (`BIGINT`).
    Long(i64),
    /// A number with a fraction or exponent (`DOUBLE`).
    Double(f64),
    /// A string.
    String(String),
    /// `DATE '…'`: days since the epoch.
    Date(i32),
    /// `TIMESTAMP '…'`: µs since the epoch, UTC.
    Timestamp(i64),
}

/// The types expressions compute with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Type {
    /// `BOOLEAN`.
    Boolean,
    /// `BIGINT` (and the smaller integers, widened).
    Long,
    /// `DOUBLE` (and `FLOAT`, widened).
    Double,
    /// `STRING`.
    String,
    /// `DATE`.
    Date,
    /// `TIMESTAMP` (µs, UTC).
    Timestamp,
}

/// A comparison operator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compare {
    /// `=`.
    Eq,
    /// `<>`.
    NotEq,
    /// `<`.
    Lt,
    /// `<=`.
    LtEq,
    /// `>`.
    Gt,
    /// `>=`.
    GtEq,
    /// `<=>`: equal, with NULL equal to NULL; never NULL itself.
    NullSafeEq,
}

/// An arithmetic operator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arithmetic {
    /// `+`.
    Add,
    /// `-`.
    Subtract,
    /// `*`.
    Multiply,
    /// `/` (always a double; NULL for a zero divisor).
    Divide,
    /// `%` (NULL for a zero divisor).
    Remainder,
}

/// What `IS` tests.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IsTest {
    /// `IS NULL`.
    Null,
    /// `IS TRUE`.
    True,
    /// `IS FALSE`.
    False,
}

/// A function.
#[derive(Clone, Debug, PartialEq)]
pub enum Function {
    /// `length(s)`: characters.
    Length,
    /// `lower(s)`.
    Lower,
    /// `upper(s)`.
    Upper,
    /// `trim(s)`: spaces at both ends.
    Trim,
    /// `abs(n)`.
    Abs,
    /// `coalesce(a, b, …)`: the first non-null.
    Coalesce,
    /// `substring(s, pos[, len])`: from 1-based `pos` (negative: from the end).
    Substring,
    /// `date_format(t, pattern)`, the pattern translated to chrono's.
    DateFormat(String),
    /// `to_date(t)`.
    ToDate,
    /// `year(t)`, `month(t)`, … : a part of a date or timestamp.
    Part(DatePart),
}

/// A part of a date or timestamp.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DatePart {
    /// `year`.
    Year,
    /// `month`.
    Month,
    /// `day`.
    Day,
    /// `hour`.
    Hour,
    /// `minute`.
    Minute,
    /// `second`.
    Second,
}
