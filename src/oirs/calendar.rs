//! Días hábiles (Ley 19.880 art. 25): Saturdays, Sundays and public holidays are not business
//! days; a deadline counts from the business day after receipt; a case received on a
//! non-business day counts as received on the next business day.

use std::collections::BTreeSet;

use chrono::{Datelike, Duration, NaiveDate, Weekday};
use serde::Deserialize;

/// The holiday file shipped with the service.
pub const HOLIDAYS_FILE: &str = include_str!("../../calendar/feriados-cl.toml");

#[derive(Clone, Debug, Deserialize)]
pub struct HolidayFile {
    pub version: i64,
    pub holidays: Vec<HolidayEntry>,
}

#[derive(Clone, Debug, Deserialize)]
pub struct HolidayEntry {
    pub date: NaiveDate,
    pub name: String,
}

pub fn shipped_holidays() -> Result<HolidayFile, toml::de::Error> {
    toml::from_str(HOLIDAYS_FILE)
}

/// A business-day calendar over a set of holidays.
#[derive(Clone, Debug, Default)]
pub struct DiasHabiles {
    holidays: BTreeSet<NaiveDate>,
}

impl DiasHabiles {
    pub fn new(holidays: impl IntoIterator<Item = NaiveDate>) -> Self {
        Self {
            holidays: holidays.into_iter().collect(),
        }
    }

    pub fn is_business_day(&self, d: NaiveDate) -> bool {
        !matches!(d.weekday(), Weekday::Sat | Weekday::Sun) && !self.holidays.contains(&d)
    }

    /// The first business day on or after `d`.
    pub fn on_or_after(&self, mut d: NaiveDate) -> NaiveDate {
        while !self.is_business_day(d) {
            d += Duration::days(1);
        }
        d
    }

    /// The business day `n` business days after `d` (n = 0 returns `d`).
    pub fn add(&self, mut d: NaiveDate, n: u32) -> NaiveDate {
        let mut left = n;
        while left > 0 {
            d += Duration::days(1);
            if self.is_business_day(d) {
                left -= 1;
            }
        }
        d
    }

    /// Business days in the interval (from, to]; negative when `to` is before `from`.
    pub fn between(&self, from: NaiveDate, to: NaiveDate) -> i64 {
        if to < from {
            return -self.between(to, from);
        }
        let mut n = 0;
        let mut d = from;
        while d < to {
            d += Duration::days(1);
            if self.is_business_day(d) {
                n += 1;
            }
        }
        n
    }

    /// The date a case counts as received: the day itself when it is a business day,
    /// otherwise the next business day.
    pub fn effective_receipt(&self, received: NaiveDate) -> NaiveDate {
        self.on_or_after(received)
    }

    /// The due date of a case received on `received` with a deadline of `days` días
    /// hábiles: counting starts the business day after the (effective) receipt.
    pub fn due_date(&self, received: NaiveDate, days: u32) -> NaiveDate {
        self.add(self.effective_receipt(received), days)
    }

    /// Business days left until `due` as seen on `today` (0 on the due date, negative when
    /// overdue).
    pub fn days_left(&self, today: NaiveDate, due: NaiveDate) -> i64 {
        self.between(today, due)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").expect("date")
    }

    fn chile() -> DiasHabiles {
        DiasHabiles::new(
            shipped_holidays()
                .expect("holiday file parses")
                .holidays
                .into_iter()
                .map(|h| h.date),
        )
    }

    #[test]
    fn shipped_file_covers_2025_to_2027() {
        let f = shipped_holidays().expect("parse");
        for y in 2025..=2027 {
            let n = f.holidays.iter().filter(|h| h.date.year() == y).count();
            assert!(n >= 15, "{y} has {n} holidays");
        }
        let cal = chile();
        // Moved holidays are observed on the Monday.
        assert!(!cal.is_business_day(d("2027-06-28")));
        assert!(cal.is_business_day(d("2027-06-29")));
        assert!(!cal.is_business_day(d("2027-10-11")));
    }

    #[test]
    fn due_dates_on_real_calendar_days() {
        let cal = chile();
        // (received, días hábiles, due)
        let table = [
            // Monday 2026-11-23 + 20 business days, no holidays in between → 2026-12-21
            // except 8 December (Tuesday).
            ("2026-11-23", 20, "2026-12-22"),
            // Received on a Saturday: counts from Monday 2026-11-23.
            ("2026-11-21", 20, "2026-12-22"),
            // Received on Friday 18 September (holiday) 2026: effective Monday 21.
            ("2026-09-18", 1, "2026-09-22"),
            // Thursday before Good Friday 2026 (3 April): next business day is Monday 6.
            ("2026-04-02", 1, "2026-04-06"),
            // Across Christmas and New Year 2026/27.
            ("2026-12-24", 5, "2027-01-04"),
            // Transparency: 20 days, then +10 extension from the first due date.
            ("2027-03-01", 20, "2027-03-30"),
            // A case received on Sunday before the moved San Pedro y San Pablo 2027.
            ("2027-06-27", 1, "2027-06-30"),
        ];
        for (received, days, due) in table {
            assert_eq!(
                cal.due_date(d(received), days),
                d(due),
                "{received} + {days}"
            );
        }
        assert_eq!(cal.add(d("2027-03-30"), 10), d("2027-04-13"));
    }

    #[test]
    fn days_left_counts_business_days() {
        let cal = chile();
        assert_eq!(cal.days_left(d("2026-12-18"), d("2026-12-22")), 2);
        assert_eq!(cal.days_left(d("2026-12-22"), d("2026-12-22")), 0);
        assert_eq!(cal.days_left(d("2026-12-23"), d("2026-12-22")), -1);
        assert_eq!(cal.days_left(d("2026-12-28"), d("2026-12-22")), -3);
    }

    /// Properties over many pseudo-random dates (a fixed LCG, so failures reproduce).
    #[test]
    fn properties_hold_for_random_dates() {
        let cal = chile();
        let start = d("2025-01-01");
        let mut seed: u64 = 0x5eed;
        let mut next = || {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            seed >> 33
        };
        for _ in 0..2000 {
            let received = start + Duration::days((next() % 1000) as i64);
            let days = (next() % 30) as u32 + 1;
            let due = cal.due_date(received, days);
            // The due date is a business day, after receipt.
            assert!(cal.is_business_day(due));
            assert!(due > received);
            // Exactly `days` business days lie after the effective receipt up to the due date.
            let eff = cal.effective_receipt(received);
            assert!(cal.is_business_day(eff) && eff >= received);
            assert_eq!(cal.between(eff, due), days as i64);
            // Adding is monotonic and composes.
            assert_eq!(cal.add(cal.add(eff, 3), days), cal.add(eff, days + 3));
            // A later receipt never gives an earlier due date.
            assert!(cal.due_date(received + Duration::days(1), days) >= due);
        }
    }
}
