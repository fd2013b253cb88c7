//! The retry schedule of deliveries (`JIT_IAM_WEBHOOK_RETRY_SCHEDULE`).

/// When to try again after a failed attempt: the next step of the schedule
/// (`attempt` counts attempts made, from 1), or None when it is used up.
pub fn retry_delay(schedule: &[std::time::Duration], attempt: i32) -> Option<std::time::Duration> {
    usize::try_from(attempt - 1).ok().and_then(|step| schedule.get(step)).copied()
}

/// `JIT_IAM_WEBHOOK_RETRY_SCHEDULE`: delays after each failed attempt, e.g. `5s,5m,30m`.
pub fn parse_retry_schedule(value: &str) -> Result<Vec<std::time::Duration>, String> {
    let delays = value
        .split(',')
        .map(str::trim)
        .filter(|step| !step.is_empty())
        .map(|step| humantime::parse_duration(step).map_err(|e| format!("`{step}` is not a duration ({e})")))
        .collect::<Result<Vec<_>, _>>()?;
    if delays.len() > 50 {
        return Err("at most 50 retries".into());
    }
    Ok(delays)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_follow_the_schedule_then_stop() {
        let schedule = parse_retry_schedule("5s, 5m,30m").unwrap();
        assert_eq!(retry_delay(&schedule, 1), Some(std::time::Duration::from_secs(5)));
        assert_eq!(retry_delay(&schedule, 3), Some(std::time::Duration::from_secs(1800)));
        assert_eq!(retry_delay(&schedule, 4), None);
        assert_eq!(retry_delay(&[], 1), None);
        assert!(parse_retry_schedule("5s,soon").is_err());
    }
}
