//! Durations on the command line, written as Mesos writes them: `15s`, `500ms`, `10mins`, `1hrs`.

use std::time::Duration;

/// Parses `<number><unit>` where unit is one of `ns`, `us`, `ms`, `s`/`secs`, `m`/`mins`,
/// `h`/`hrs`, `d`/`days`, `w`/`weeks`. The number may have a fraction.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .ok_or_else(|| format!("duration {text:?} has no unit (try '15s' or '500ms')"))?;
    let (number, unit) = text.split_at(split);
    let number: f64 = number
        .parse()
        .map_err(|_| format!("duration {text:?} does not start with a number"))?;
    let unit_secs = match unit {
        "ns" => 1e-9,
        "us" => 1e-6,
        "ms" => 1e-3,
        "s" | "secs" => 1.0,
        "m" | "mins" => 60.0,
        "h" | "hrs" => 3600.0,
        "d" | "days" => 86_400.0,
        "w" | "weeks" => 604_800.0,
        _ => return Err(format!("duration {text:?} has an unknown unit {unit:?}")),
    };
    Duration::try_from_secs_f64(number * unit_secs)
        .map_err(|err| format!("duration {text:?} is out of range: {err}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_mesos_style_durations() {
        assert_eq!(parse_duration("15s"), Ok(Duration::from_secs(15)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("10mins"), Ok(Duration::from_secs(600)));
        assert_eq!(parse_duration("1.5h"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("1weeks"), Ok(Duration::from_secs(604_800)));
    }

    #[test]
    fn rejects_what_it_cannot_read() {
        for bad in ["", "15", "s", "15 parsecs", "-1s", "1e400s"] {
            assert!(parse_duration(bad).is_err(), "{bad:?} should not parse");
        }
    }
}
