//! How much memory a decoder may take: a limit checked before any model state is made, so that
//! an archive's header cannot make lmzip ask for more than the machine (or `ulimit -v`) gives,
//! which would abort the process instead of failing cleanly.

use crate::Error;

/// The default limit: half the physical memory, and half the address-space limit
/// (`ulimit -v`) when one is set; 4 GiB where neither can be read.
pub fn default_limit() -> u64 {
    let physical = meminfo_total().map(|b| b / 2);
    let address_space = address_space_limit().map(|b| b / 2);
    match (physical, address_space) {
        (Some(a), Some(b)) => a.min(b),
        (Some(a), None) | (None, Some(a)) => a,
        (None, None) => 4 << 30,
    }
}

/// `MemTotal` of `/proc/meminfo`, in bytes.
fn meminfo_total() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// The soft limit on the address space (`ulimit -v`), in bytes, if one is set.
fn address_space_limit() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = text.lines().find(|l| l.starts_with("Max address space"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

/// How many of `threads` threads fit in `limit` bytes when each takes `per_thread` bytes;
/// at least one, or an error that says what is needed.
pub(crate) fn threads_within(
    threads: usize,
    per_thread: u64,
    limit: u64,
    what: &str,
) -> Result<usize, Error> {
    let fit = limit / per_thread.max(1);
    if fit == 0 {
        return Err(Error::Limit(format!(
            "decoding {what} needs about {} MiB, more than the memory limit of {} MiB \
             (raise it with --memory)",
            per_thread.div_ceil(1 << 20),
            limit >> 20
        )));
    }
    Ok(threads.min(usize::try_from(fit).unwrap_or(usize::MAX)))
}

/// Parse a memory size as the command line takes it: bytes, or a number with a binary suffix
/// `K`, `M`, `G` or `T` (`KiB`, `MiB`, … too), or `max` for no limit.
pub fn parse_size(text: &str) -> Result<u64, String> {
    let t = text.trim();
    if t.eq_ignore_ascii_case("max") {
        return Ok(u64::MAX);
    }
    let digits = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (number, suffix) = t.split_at(digits);
    let number: u64 = number
        .parse()
        .map_err(|_| format!("'{text}' is not a size (e.g. 800M, 2G, max)"))?;
    let shift = match suffix.trim().to_ascii_uppercase().as_str() {
        "" | "B" => 0,
        "K" | "KB" | "KIB" => 10,
        "M" | "MB" | "MIB" => 20,
        "G" | "GB" | "GIB" => 30,
        "T" | "TB" | "TIB" => 40,
        _ => return Err(format!("'{text}' is not a size (e.g. 800M, 2G, max)")),
    };
    number
        .checked_mul(1 << shift)
        .ok_or_else(|| format!("'{text}' is too large"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse() {
        assert_eq!(parse_size("1000").unwrap(), 1000);
        assert_eq!(parse_size("800M").unwrap(), 800 << 20);
        assert_eq!(parse_size("2GiB").unwrap(), 2 << 30);
        assert_eq!(parse_size("max").unwrap(), u64::MAX);
        assert!(parse_size("lots").is_err());
        assert!(parse_size("99999999999T").is_err());
    }

    #[test]
    fn threads_are_lowered_to_fit_or_refused() {
        assert_eq!(threads_within(8, 100, 450, "x").unwrap(), 4);
        assert_eq!(threads_within(2, 100, 10_000, "x").unwrap(), 2);
        let e = threads_within(8, 300 << 20, 100 << 20, "blocks").unwrap_err();
        assert!(e.to_string().contains("300 MiB"), "{e}");
        assert!(default_limit() > 0);
    }
}
