//! Días hábiles (Ley 19.880 art. 25): Saturdays, Sundays and public holidays are not business
//! days; a deadline counts from the business day after receipt; a case received on a
//! non-business day counts as received on the next business day.

use std::collections::BTreeSet;

use chrono::{Datelike, Duration, NaiveDate, Weekday};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

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

/// How a case type's term is counted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Clock {
    /// Días hábiles (Ley 19.880 art. 25): counting starts the business day after the
    /// (effective) receipt and only business days count.
    #[default]
    Habiles,
    /// Días corridos (Ley 19.628 art. 11 as amended by Ley 21.719 for data-subject rights):
    /// every day counts from the day after receipt; a term whose last day is not a business
    /// day ends on the next business day (Ley 19.880 art. 25, last paragraph, which governs
    /// the procedures of the Administración del Estado per its art. 1).
    Corridos,
}

impl Clock {
    pub const ALL: [Clock; 2] = [Clock::Habiles, Clock::Corridos];

    pub fn as_str(self) -> &'static str {
        match self {
            Clock::Habiles => "habiles",
            Clock::Corridos => "corridos",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == s.trim())
    }

    /// "días hábiles" / "días corridos".
    pub fn unit(self) -> &'static str {
        match self {
            Clock::Habiles => "días hábiles",
            Clock::Corridos => "días corridos",
        }
    }

    /// "día hábil" / "día corrido".
    pub fn unit_one(self) -> &'static str {
        match self {
            Clock::Habiles => "día hábil",
            Clock::Corridos => "día corrido",
        }
    }

    /// "hábiles" / "corridos", beside a number of days in a list.
    pub fn short(self) -> &'static str {
        match self {
            Clock::Habiles => "hábiles",
            Clock::Corridos => "corridos",
        }
    }
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

    /// The due date of a term of `days` on `clock` for a case received on `received`.
    pub fn due_on(&self, clock: Clock, received: NaiveDate, days: u32) -> NaiveDate {
        match clock {
            Clock::Habiles => self.due_date(received, days),
            Clock::Corridos => self.on_or_after(received + Duration::days(days as i64)),
        }
    }

    /// `due` moved `days` later on `clock` (an extension, or the days a pause lasted).
    pub fn extend(&self, clock: Clock, due: NaiveDate, days: u32) -> NaiveDate {
        match clock {
            Clock::Habiles => self.add(due, days),
            Clock::Corridos => self.on_or_after(due + Duration::days(days as i64)),
        }
    }

    /// Days on `clock` in the interval (from, to]; negative when `to` is before `from`.
    pub fn elapsed(&self, clock: Clock, from: NaiveDate, to: NaiveDate) -> i64 {
        match clock {
            Clock::Habiles => self.between(from, to),
            Clock::Corridos => (to - from).num_days(),
        }
    }

    /// Days on `clock` left until `due` as seen on `today`.
    pub fn left(&self, clock: Clock, today: NaiveDate, due: NaiveDate) -> i64 {
        self.elapsed(clock, today, due)
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

    /// Días corridos (datos_personales, 30 + 30): every day counts from the day after
    /// receipt; a last day that is not a business day moves to the next business day.
    #[test]
    fn corridos_terms_on_real_calendar_days() {
        let cal = chile();
        let c = Clock::Corridos;
        // Received Tuesday 2026-12-01 (the law's first day in force): + 30 = Thursday
        // 2026-12-31, a business day.
        assert_eq!(cal.due_on(c, d("2026-12-01"), 30), d("2026-12-31"));
        // Received Sunday 2026-11-29: + 30 = Tuesday 2026-12-29; the weekend of receipt
        // counts like any other day.
        assert_eq!(cal.due_on(c, d("2026-11-29"), 30), d("2026-12-29"));
        // Received Thursday 2026-12-03: + 30 = Saturday 2027-01-02 → Monday 2027-01-04.
        assert_eq!(cal.due_on(c, d("2026-12-03"), 30), d("2027-01-04"));
        // Received Sunday 2026-11-01: + 30 = Tuesday 2026-12-01, a business day.
        assert_eq!(cal.due_on(c, d("2026-11-01"), 30), d("2026-12-01"));
        // Received Sunday 2026-11-08: + 30 = Tuesday 2026-12-08, Inmaculada Concepción
        // (holiday) → Wednesday 2026-12-09.
        assert_eq!(cal.due_on(c, d("2026-11-08"), 30), d("2026-12-09"));
        // The extension: 30 more days from the due date in force. 2026-12-31 + 30 =
        // Saturday 2027-01-30 → Monday 2027-02-01.
        assert_eq!(cal.extend(c, d("2026-12-31"), 30), d("2027-02-01"));
        // A pause of 6 calendar days moves the due date by 6 days (then to a business day).
        assert_eq!(cal.extend(c, d("2026-12-09"), 6), d("2026-12-15"));
        assert_eq!(cal.left(c, d("2026-12-01"), d("2026-12-31")), 30);
        assert_eq!(cal.left(c, d("2027-01-02"), d("2026-12-31")), -2);
        // The hábiles clock is the one the other types keep.
        assert_eq!(
            cal.due_on(Clock::Habiles, d("2026-11-23"), 20),
            cal.due_date(d("2026-11-23"), 20)
        );
        assert_eq!(Clock::parse("corridos"), Some(Clock::Corridos));
        assert_eq!(Clock::parse("semanas"), None);
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
