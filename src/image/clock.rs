//! The one clock of an image: every timestamp in every structure (volume descriptors, directory
//! records, Rock Ridge `TF`, FAT entries) comes from here, never from the wall clock or from
//! source mtimes, so the same tree gives the same bytes anywhere.

/// The default when `SOURCE_DATE_EPOCH` is not set: 1980-01-01T00:00:00Z, the value nixpkgs'
/// stdenv exports (and the earliest date FAT can store).
pub const DEFAULT_EPOCH: i64 = 315_532_800;

/// Seconds since 1970-01-01T00:00:00Z, UTC.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Clock {
    /// The timestamp every structure carries.
    pub epoch: i64,
}

/// `SOURCE_DATE_EPOCH` is set but is not a decimal number of seconds in range.
#[derive(Debug, thiserror::Error)]
#[error(
    "SOURCE_DATE_EPOCH={0:?} is not a number of seconds between 0 and 253402300799 (year 9999)"
)]
pub struct BadEpoch(pub String);

/// A broken-down UTC time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Civil {
    /// Full year (1970..=9999).
    pub year: i64,
    /// 1..=12
    pub month: u8,
    /// 1..=31
    pub day: u8,
    /// 0..=23
    pub hour: u8,
    /// 0..=59
    pub minute: u8,
    /// 0..=59
    pub second: u8,
}

impl Clock {
    /// A clock at a fixed epoch.
    pub fn at(epoch: i64) -> Clock {
        Clock { epoch }
    }

    /// `SOURCE_DATE_EPOCH` when set (it must be valid), otherwise [`DEFAULT_EPOCH`].
    pub fn from_env() -> Result<Clock, BadEpoch> {
        match std::env::var("SOURCE_DATE_EPOCH") {
            Err(_) => Ok(Clock::at(DEFAULT_EPOCH)),
            Ok(s) => Self::parse(&s),
        }
    }

    /// Parses a `SOURCE_DATE_EPOCH` value.
    pub fn parse(s: &str) -> Result<Clock, BadEpoch> {
        s.trim()
            .parse::<i64>()
            .ok()
            .and_then(|e| Clock::checked(e).ok())
            .ok_or_else(|| BadEpoch(s.to_string()))
    }

    /// A clock at `epoch`, which must be a date ISO 9660 can hold (1970 to 9999).
    pub fn checked(epoch: i64) -> Result<Clock, BadEpoch> {
        if (0..=253_402_300_799).contains(&epoch) {
            Ok(Clock::at(epoch))
        } else {
            Err(BadEpoch(epoch.to_string()))
        }
    }

    /// The UTC calendar time (Howard Hinnant's `civil_from_days`).
    pub fn civil(&self) -> Civil {
        let days = self.epoch.div_euclid(86_400);
        let secs = self.epoch.rem_euclid(86_400);
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z - era * 146_097;
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = (doy - (153 * mp + 2) / 5 + 1) as u8;
        let month = if mp < 10 { mp + 3 } else { mp - 9 } as u8;
        let year = yoe + era * 400 + i64::from(month <= 2);
        Civil {
            year,
            month,
            day,
            hour: (secs / 3600) as u8,
            minute: (secs / 60 % 60) as u8,
            second: (secs % 60) as u8,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_dates() {
        assert_eq!(
            Clock::at(1_709_210_096).civil(),
            Civil {
                year: 2024,
                month: 2,
                day: 29,
                hour: 12,
                minute: 34,
                second: 56
            }
        );
        assert_eq!(Clock::at(DEFAULT_EPOCH).civil().year, 1980);
    }

    #[test]
    fn parse_epoch() {
        assert_eq!(Clock::parse("1700000000").unwrap().epoch, 1_700_000_000);
        assert!(Clock::parse("soon").is_err());
        assert!(Clock::parse("-5").is_err());
    }
}
