//! The cron grammar Punctual accepts, checked field by field and rewritten into a plain
//! numeric expression for `croner`.
//!
//! `croner` is lenient in ways that would surprise users (it replaces weekday names
//! anywhere in the string, accepts `+5`, silently ignores `7L`, treats `L` alone in the
//! day-of-week field as "never"), and its errors do not say which field is wrong. So we
//! parse the expression ourselves, report mistakes precisely, and hand `croner` only a
//! canonical expression made of numbers, `*`, `-`, `/`, `,`, `#` and `L`.
//!
//! Grammar, per field (`a` and `b` are numbers or, where noted, names):
//!
//! | field        | range | names      | items                                             |
//! |--------------|-------|------------|---------------------------------------------------|
//! | second       | 0-59  |            | `*` `a` `a-b` `*/s` `a/s` `a-b/s`, comma lists     |
//! | minute       | 0-59  |            | same                                              |
//! | hour         | 0-23  |            | same                                              |
//! | day of month | 1-31  |            | same, `?` (= `*`), `L` (last day of the month)     |
//! | month        | 1-12  | `JAN`-`DEC`| same                                              |
//! | day of week  | 0-7   | `SUN`-`SAT`| same, `?`, `a#n` (n-th weekday a, n 1-5), `aL` (last weekday a of the month) |
//!
//! 0 and 7 are both Sunday; a range ending in `SUN` (`FRI-SUN`) ends at 7. Names are
//! case-insensitive. `*` (or `?`) stands alone, or before a step. Ranges may not wrap
//! around (`FRI-MON` is refused). `a/s` means `a-max/s`. The nearest-weekday `W` and a
//! year field are not supported.
//!
//! When both the day-of-month and day-of-week fields are restricted (neither is exactly
//! `*` or `?`), a day matches if EITHER matches (the classic Vixie cron rule, as croner
//! implements it).

use std::fmt::Write as _;

/// Month lengths in a leap year, to refuse day-of-month/month combinations that never
/// occur (`0 0 31 2 *`).
const MAX_DAYS_IN_MONTH: [u8; 12] = [31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
const MONTH_NAMES: [&str; 12] = [
    "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
];
const WEEKDAY_NAMES: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];

/// A cron expression checked against our grammar and rewritten for croner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct NormalizedCron {
    /// The canonical expression (5 fields, or 6 with leading seconds).
    pub(crate) expression: String,
    /// Whether the user wrote a seconds field.
    pub(crate) has_seconds: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Second,
    Minute,
    Hour,
    DayOfMonth,
    Month,
    DayOfWeek,
}

#[derive(Debug, Clone, Copy)]
struct FieldSpec {
    kind: Kind,
    label: &'static str,
    min: u8,
    max: u8,
}

const SECOND: FieldSpec = FieldSpec {
    kind: Kind::Second,
    label: "seconds field",
    min: 0,
    max: 59,
};
const MINUTE: FieldSpec = FieldSpec {
    kind: Kind::Minute,
    label: "minute field",
    min: 0,
    max: 59,
};
const HOUR: FieldSpec = FieldSpec {
    kind: Kind::Hour,
    label: "hour field",
    min: 0,
    max: 23,
};
const DAY_OF_MONTH: FieldSpec = FieldSpec {
    kind: Kind::DayOfMonth,
    label: "day-of-month field",
    min: 1,
    max: 31,
};
const MONTH: FieldSpec = FieldSpec {
    kind: Kind::Month,
    label: "month field",
    min: 1,
    max: 12,
};
const DAY_OF_WEEK: FieldSpec = FieldSpec {
    kind: Kind::DayOfWeek,
    label: "day-of-week field",
    min: 0,
    max: 7,
};

/// One field, rewritten.
struct Field {
    text: String,
    /// Bit `v` is set when plain value `v` is selected (not counting `L`, `#`).
    values: u64,
    /// Day-of-month `L` was given.
    last_day: bool,
    /// The field was `*` or `?`.
    star: bool,
}

enum Item {
    Values { start: u8, end: u8, step: u8 },
    LastDayOfMonth,
    NthWeekday { day: u8, nth: u8 },
    LastWeekday { day: u8 },
}

/// Checks `input` (already trimmed) and rewrites it; the error is a message for the user.
pub(crate) fn normalize(input: &str) -> Result<NormalizedCron, String> {
    if input.is_empty() {
        return Err("must not be empty".to_owned());
    }
    let expanded = if input.starts_with('@') {
        expand_alias(input)?
    } else {
        input
    };
    let parts: Vec<&str> = expanded.split_whitespace().collect();
    let (specs, has_seconds): (&[FieldSpec], bool) = match parts.len() {
        5 => (&[MINUTE, HOUR, DAY_OF_MONTH, MONTH, DAY_OF_WEEK], false),
        6 => (
            &[SECOND, MINUTE, HOUR, DAY_OF_MONTH, MONTH, DAY_OF_WEEK],
            true,
        ),
        7 => {
            return Err(
                "has 7 fields, but a year field is not supported; use 5 fields \
                 (minute hour day-of-month month day-of-week) or 6 with a leading seconds field"
                    .to_owned(),
            )
        }
        n => {
            return Err(format!(
                "has {n} field{}; expected 5 (minute hour day-of-month month day-of-week) \
                 or 6 (with a leading seconds field)",
                if n == 1 { "" } else { "s" }
            ))
        }
    };
    let fields = specs
        .iter()
        .zip(&parts)
        .map(|(spec, raw)| normalize_field(spec, raw))
        .collect::<Result<Vec<Field>, String>>()?;
    let offset = usize::from(has_seconds);
    if let (Some(dom), Some(month), Some(dow)) = (
        fields.get(offset + 2),
        fields.get(offset + 3),
        fields.get(offset + 4),
    ) {
        check_day_can_occur(dom, month, dow)?;
    }
    let expression = fields
        .iter()
        .map(|field| field.text.as_str())
        .collect::<Vec<_>>()
        .join(" ");
    Ok(NormalizedCron {
        expression,
        has_seconds,
    })
}

fn expand_alias(input: &str) -> Result<&'static str, String> {
    const ALIASES: [(&str, &str); 7] = [
        ("@yearly", "0 0 1 1 *"),
        ("@annually", "0 0 1 1 *"),
        ("@monthly", "0 0 1 * *"),
        ("@weekly", "0 0 * * 0"),
        ("@daily", "0 0 * * *"),
        ("@midnight", "0 0 * * *"),
        ("@hourly", "0 * * * *"),
    ];
    ALIASES
        .iter()
        .find(|(alias, _)| alias.eq_ignore_ascii_case(input))
        .map(|(_, expansion)| *expansion)
        .ok_or_else(|| {
            format!(
                "unknown alias {input:?}; use one of @yearly, @annually, @monthly, @weekly, \
                 @daily, @midnight, @hourly"
            )
        })
}

/// Refuses a day-of-month that no selected month has (`0 0 30 2 *`): such a schedule
/// would never run. Only relevant when the day of week is unrestricted; otherwise a day
/// matching the weekday always exists.
fn check_day_can_occur(dom: &Field, month: &Field, dow: &Field) -> Result<(), String> {
    if !dow.star || dom.star || dom.last_day {
        return Ok(());
    }
    let possible = (1..=12u8).any(|m| {
        month.values & (1 << m) != 0
            && (1..=MAX_DAYS_IN_MONTH[usize::from(m - 1)]).any(|d| dom.values & (1 << d) != 0)
    });
    if possible {
        Ok(())
    } else {
        Err("never runs: none of the selected months has the selected day of the month".to_owned())
    }
}

fn normalize_field(spec: &FieldSpec, raw: &str) -> Result<Field, String> {
    let label = spec.label;
    let allows_question = matches!(spec.kind, Kind::DayOfMonth | Kind::DayOfWeek);
    if raw == "*" || (raw == "?" && allows_question) {
        let values = (spec.min..=spec.max).fold(0u64, |acc, v| acc | (1 << v));
        return Ok(Field {
            text: "*".to_owned(),
            values,
            last_day: false,
            star: true,
        });
    }
    if raw.contains('?') {
        return Err(if allows_question {
            format!("{label}: ? must stand alone")
        } else {
            format!("{label}: ? is only allowed in the day-of-month and day-of-week fields")
        });
    }
    let mut field = Field {
        text: String::new(),
        values: 0,
        last_day: false,
        star: false,
    };
    for raw_item in raw.split(',') {
        if raw_item.is_empty() {
            return Err(format!("{label}: empty element in the list {raw:?}"));
        }
        if !field.text.is_empty() {
            field.text.push(',');
        }
        match parse_item(spec, raw_item)? {
            Item::Values { start, end, step } => {
                for value in (start..=end).step_by(usize::from(step)) {
                    field.values |= 1 << value;
                }
                // Writing to a String cannot fail.
                let _ = match (start == end, step) {
                    (true, _) => write!(field.text, "{start}"),
                    (false, 1) => write!(field.text, "{start}-{end}"),
                    (false, _) => write!(field.text, "{start}-{end}/{step}"),
                };
            }
            Item::LastDayOfMonth => {
                field.last_day = true;
                field.text.push('L');
            }
            Item::NthWeekday { day, nth } => {
                let _ = write!(field.text, "{day}#{nth}");
            }
            Item::LastWeekday { day } => {
                let _ = write!(field.text, "{day}L");
            }
        }
    }
    Ok(field)
}

fn parse_item(spec: &FieldSpec, item: &str) -> Result<Item, String> {
    let label = spec.label;
    let upper = item.to_ascii_uppercase();
    match spec.kind {
        Kind::DayOfMonth => {
            if upper == "L" {
                return Ok(Item::LastDayOfMonth);
            }
            if upper.contains('W') {
                return Err(format!(
                    "{label}: W (nearest weekday) is not supported in {item:?}"
                ));
            }
            if upper.contains('L') {
                return Err(format!(
                    "{label}: L must stand alone (it means the last day of the month), not {item:?}"
                ));
            }
        }
        Kind::DayOfWeek => {
            if let Some((day, nth)) = item.split_once('#') {
                let day = parse_value(spec, day)? % 7;
                let nth = match nth {
                    "1" => 1,
                    "2" => 2,
                    "3" => 3,
                    "4" => 4,
                    "5" => 5,
                    _ => {
                        return Err(format!(
                            "{label}: the number after # must be 1 to 5 \
                             (FRI#3 is the third Friday of the month), not {nth:?}"
                        ))
                    }
                };
                return Ok(Item::NthWeekday { day, nth });
            }
            if upper == "L" {
                return Err(format!(
                    "{label}: L needs a weekday before it (5L or FRIL is the last Friday \
                     of the month)"
                ));
            }
            if let Some(day) = upper.strip_suffix('L') {
                let day = parse_value(spec, day)? % 7;
                return Ok(Item::LastWeekday { day });
            }
        }
        Kind::Second | Kind::Minute | Kind::Hour | Kind::Month => {}
    }
    let (range, step) = match item.split_once('/') {
        Some((range, step)) => (range, Some(parse_step(spec, step)?)),
        None => (item, None),
    };
    let (start, end) = if range == "*" {
        if step.is_none() {
            return Err(format!(
                "{label}: * must stand alone or before a step (*/5)"
            ));
        }
        (spec.min, spec.max)
    } else if let Some((first, last)) = range.split_once('-') {
        let start = parse_value(spec, first)?;
        let mut end = parse_value(spec, last)?;
        // FRI-SUN: a range ending with the name SUN ends at 7, Sunday at the end of the week.
        if spec.kind == Kind::DayOfWeek && end == 0 && start > 0 && last.eq_ignore_ascii_case("SUN")
        {
            end = 7;
        }
        if start > end {
            return Err(format!(
                "{label}: the range {range:?} runs backwards (ranges cannot wrap around)"
            ));
        }
        (start, end)
    } else {
        let value = parse_value(spec, range)?;
        (value, if step.is_some() { spec.max } else { value })
    };
    Ok(Item::Values {
        start,
        end,
        step: step.unwrap_or(1),
    })
}

fn parse_step(spec: &FieldSpec, text: &str) -> Result<u8, String> {
    let max = spec.max;
    parse_number(text)
        .filter(|step| (1..=u64::from(max)).contains(step))
        .and_then(|step| u8::try_from(step).ok())
        .ok_or_else(|| {
            format!(
                "{}: the step after / must be a whole number from 1 to {max}, not {text:?}",
                spec.label
            )
        })
}

/// A single value: digits, or a month or weekday name where the field has names.
fn parse_value(spec: &FieldSpec, text: &str) -> Result<u8, String> {
    let label = spec.label;
    let (min, max) = (spec.min, spec.max);
    if let Some(number) = parse_number(text) {
        return u8::try_from(number)
            .ok()
            .filter(|value| (min..=max).contains(value))
            .ok_or_else(|| format!("{label}: {number} is out of range {min}-{max}"));
    }
    let named = match spec.kind {
        Kind::Month => position_of(&MONTH_NAMES, text).map(|i| i + 1),
        Kind::DayOfWeek => position_of(&WEEKDAY_NAMES, text),
        _ => None,
    };
    if let Some(value) = named {
        return Ok(value);
    }
    Err(match spec.kind {
        Kind::Month => {
            format!("{label}: {text:?} is neither a number 1-12 nor a month name (JAN-DEC)")
        }
        Kind::DayOfWeek => {
            format!("{label}: {text:?} is neither a number 0-7 nor a weekday name (SUN-SAT)")
        }
        _ => format!("{label}: {text:?} is not a number"),
    })
}

fn position_of(names: &[&str], text: &str) -> Option<u8> {
    names
        .iter()
        .position(|name| name.eq_ignore_ascii_case(text))
        .and_then(|i| u8::try_from(i).ok())
}

/// ASCII digits only (no sign, no spaces); absurdly long numbers are out of range, not
/// "not a number".
fn parse_number(text: &str) -> Option<u64> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let significant = text.trim_start_matches('0');
    if significant.len() > 18 {
        return Some(u64::MAX);
    }
    Some(significant.parse::<u64>().unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn norm(input: &str) -> String {
        normalize(input).unwrap().expression
    }

    #[test]
    fn rewrites_names_ranges_steps_and_specials() {
        assert_eq!(norm("0 9 * * MON-FRI"), "0 9 * * 1-5");
        assert_eq!(norm("0 0 1 jan,Jul *"), "0 0 1 1,7 *");
        assert_eq!(norm("*/15 * * * *"), "0-59/15 * * * *");
        assert_eq!(norm("5/20 * * * *"), "5-59/20 * * * *");
        assert_eq!(norm("0 8-18/2 * * *"), "0 8-18/2 * * *");
        assert_eq!(norm("0 0 L * *"), "0 0 L * *");
        assert_eq!(norm("0 0 1,15,l * *"), "0 0 1,15,L * *");
        assert_eq!(norm("0 0 ? * fri#3"), "0 0 * * 5#3");
        assert_eq!(norm("0 0 * * 7#1"), "0 0 * * 0#1");
        assert_eq!(norm("0 0 * * 5L"), "0 0 * * 5L");
        assert_eq!(norm("0 0 * * 7L"), "0 0 * * 0L");
        assert_eq!(norm("0 0 * * SUNL"), "0 0 * * 0L");
        assert_eq!(norm("0 0 * * FRI-SUN"), "0 0 * * 5-7");
        assert_eq!(norm("0 0 * * SUN-SUN"), "0 0 * * 0");
        assert_eq!(norm("0 0 * * sat,sun"), "0 0 * * 6,0");
        assert_eq!(norm("00 07 * * *"), "0 7 * * *");
        assert_eq!(norm("@daily"), "0 0 * * *");
        assert_eq!(norm("@MIDNIGHT"), "0 0 * * *");
        assert_eq!(norm("@weekly"), "0 0 * * 0");
        assert_eq!(norm("30 */10 * * * *"), "30 0-59/10 * * * *");
        assert!(normalize("30 * * * * *").unwrap().has_seconds);
        assert!(!normalize("@hourly").unwrap().has_seconds);
    }

    #[test]
    fn day_of_month_and_weekday_together_may_still_run() {
        // Feb 30 never exists, but Mondays in February do (either rule matches).
        assert!(normalize("0 0 30 2 MON").is_ok());
        assert!(normalize("0 0 29 2 *").is_ok());
        assert!(normalize("0 0 L 2 *").is_ok());
    }
}
