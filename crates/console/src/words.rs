//! Common cron expressions said in words ("every 5 minutes", "weekdays at 09:30").
//! Anything less common is left to the expression itself.

const DAYS: [&str; 7] = [
    "Sunday",
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
];

fn number(field: &str, max: u32) -> Option<u32> {
    field.parse().ok().filter(|n| *n <= max)
}

fn step(field: &str) -> Option<u32> {
    field.strip_prefix("*/")?.parse().ok().filter(|n| *n > 0)
}

fn plural(n: u32, unit: &str) -> String {
    if n == 1 {
        format!("every {unit}")
    } else {
        format!("every {n} {unit}s")
    }
}

fn weekday(field: &str) -> Option<String> {
    let upper = field.to_ascii_uppercase();
    match upper.as_str() {
        "1-5" | "MON-FRI" => return Some("weekdays".to_owned()),
        "0,6" | "6,0" | "SAT,SUN" | "SUN,SAT" => return Some("weekends".to_owned()),
        _ => {}
    }
    let index = match number(field, 7) {
        Some(n) => n % 7,
        None => {
            let position = DAYS
                .iter()
                .position(|d| d[..3].eq_ignore_ascii_case(field))?;
            u32::try_from(position).ok()?
        }
    };
    DAYS.get(usize::try_from(index).ok()?)
        .map(|d| format!("every {d}"))
}

/// `cron` in words, when it is one of the common shapes.
pub(crate) fn describe(cron: &str) -> Option<String> {
    let alias = match cron.trim().to_ascii_lowercase().as_str() {
        "@yearly" | "@annually" => Some("every year on 1 January at 00:00"),
        "@monthly" => Some("every month on the 1st at 00:00"),
        "@weekly" => Some("every Sunday at 00:00"),
        "@daily" | "@midnight" => Some("every day at 00:00"),
        "@hourly" => Some("every hour at :00"),
        _ => None,
    };
    if let Some(alias) = alias {
        return Some(alias.to_owned());
    }
    let fields: Vec<&str> = cron.split_whitespace().collect();
    let (second, rest) = match fields.len() {
        5 => (None, &fields[..]),
        6 => (Some(fields[0]), &fields[1..]),
        _ => return None,
    };
    let [minute, hour, day, month, dow] = rest else {
        return None;
    };
    if *month != "*" {
        return None;
    }
    match second {
        Some("*") if rest.iter().all(|f| *f == "*") => return Some("every second".to_owned()),
        Some(s) if rest.iter().all(|f| *f == "*") => return step(s).map(|n| plural(n, "second")),
        Some("0") | None => {}
        Some(_) => return None,
    }
    let everywhere = *day == "*" && *dow == "*";
    if *hour == "*" && everywhere {
        if *minute == "*" {
            return Some("every minute".to_owned());
        }
        if let Some(n) = step(minute) {
            return Some(plural(n, "minute"));
        }
        return number(minute, 59).map(|m| format!("every hour at :{m:02}"));
    }
    if *minute == "0" && everywhere {
        if let Some(n) = step(hour) {
            return Some(plural(n, "hour"));
        }
    }
    let at = format!("{:02}:{:02}", number(hour, 23)?, number(minute, 59)?);
    match (*day, *dow) {
        ("*", "*") => Some(format!("every day at {at}")),
        ("*", dow) => weekday(dow).map(|days| format!("{days} at {at}")),
        (day, "*") => number(day, 31)
            .filter(|d| *d >= 1)
            .map(|d| format!("every month on day {d} at {at}")),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::describe;

    #[test]
    fn common_shapes_read_as_words() {
        for (cron, words) in [
            ("* * * * *", "every minute"),
            ("*/5 * * * *", "every 5 minutes"),
            ("15 * * * *", "every hour at :15"),
            ("0 */2 * * *", "every 2 hours"),
            ("30 3 * * *", "every day at 03:30"),
            ("30 9 * * 1-5", "weekdays at 09:30"),
            ("0 8 * * MON", "every Monday at 08:00"),
            ("0 8 * * 0", "every Sunday at 08:00"),
            ("0 0 1 * *", "every month on day 1 at 00:00"),
            ("* * * * * *", "every second"),
            ("*/10 * * * * *", "every 10 seconds"),
            ("0 30 3 * * *", "every day at 03:30"),
            ("@hourly", "every hour at :00"),
        ] {
            assert_eq!(describe(cron).as_deref(), Some(words), "{cron}");
        }
        for odd in [
            "0 0 1 1 *",
            "5,10 * * * *",
            "0 0 L * *",
            "bogus",
            "0 0 * * * * *",
        ] {
            assert_eq!(describe(odd), None, "{odd}");
        }
    }
}
