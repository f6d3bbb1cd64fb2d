//! Parse a cron expression in a time zone and print its next runs, with the very
//! function the engine and `POST /api/v1/schedules/preview` use.
//!
//! ```sh
//! cargo run -p punctual-domain --example next_runs -- "30 2 * * *" Europe/Oslo 5
//! ```

use std::process::ExitCode;

use chrono::Utc;
use punctual_domain::Schedule;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let cron = args
        .first()
        .map(String::as_str)
        .unwrap_or("0 9 * * MON-FRI");
    let timezone = args.get(1).map(String::as_str).unwrap_or("Europe/Oslo");
    let count: usize = args.get(2).and_then(|c| c.parse().ok()).unwrap_or(5);

    let schedule = match Schedule::parse_cron(cron, timezone) {
        Ok(schedule) => schedule,
        Err(error) => {
            eprintln!("{error}");
            return ExitCode::from(2);
        }
    };
    let Some(zone) = schedule.timezone() else {
        return ExitCode::FAILURE;
    };
    let runs = schedule.upcoming(Utc::now(), count);
    println!("next {} runs of `{cron}` in {timezone}:", runs.len());
    for run in &runs {
        println!(
            "  {}   {}",
            run.to_rfc3339(),
            run.with_timezone(&zone.tz()).to_rfc3339()
        );
    }
    // The example checks its own outcome: the runs exist and strictly increase.
    let increasing = runs.windows(2).all(|pair| pair[0] < pair[1]);
    if runs.len() == count && increasing {
        ExitCode::SUCCESS
    } else {
        eprintln!("expected {count} increasing runs");
        ExitCode::FAILURE
    }
}
