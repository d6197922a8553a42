//! Chilean RUT (Rol Único Tributario): módulo 11 check digit, stored as `12345678-5`.

use std::fmt;

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Rut {
    number: u32,
    verifier: char,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RutError {
    #[error("El RUT está vacío")]
    Empty,
    #[error("El RUT tiene caracteres no válidos")]
    Characters,
    #[error("El RUT tiene un largo no válido")]
    Length,
    #[error("El dígito verificador del RUT no corresponde: revise el número")]
    Verifier,
}

/// The módulo 11 verifier for a RUT body.
pub fn verifier_for(mut number: u32) -> char {
    let mut sum = 0u32;
    let mut factor = 2;
    while number > 0 {
        sum += (number % 10) * factor;
        number /= 10;
        factor = if factor == 7 { 2 } else { factor + 1 };
    }
    match 11 - (sum % 11) {
        11 => '0',
        10 => 'K',
        d => char::from_digit(d, 10).unwrap_or('0'),
    }
}

impl Rut {
    /// Accepts `12.345.678-5`, `12345678-5` and `123456785` (verifier 0-9 or K, any case).
    pub fn parse(input: &str) -> Result<Self, RutError> {
        let s = input.trim();
        if s.is_empty() {
            return Err(RutError::Empty);
        }
        let compact: String = s.chars().filter(|c| *c != '.').collect();
        let (body, dv) = match compact.split_once('-') {
            Some((b, d)) => (b.to_string(), d.to_string()),
            None => {
                let mut chars: Vec<char> = compact.chars().collect();
                let Some(last) = chars.pop() else {
                    return Err(RutError::Length);
                };
                (chars.into_iter().collect(), last.to_string())
            }
        };
        if dv.chars().count() != 1 {
            return Err(RutError::Characters);
        }
        if body.is_empty() || body.len() > 9 {
            return Err(RutError::Length);
        }
        if !body.chars().all(|c| c.is_ascii_digit()) {
            return Err(RutError::Characters);
        }
        let verifier = dv
            .chars()
            .next()
            .map(|c| c.to_ascii_uppercase())
            .ok_or(RutError::Characters)?;
        if !(verifier.is_ascii_digit() || verifier == 'K') {
            return Err(RutError::Characters);
        }
        let number: u32 = body.parse().map_err(|_| RutError::Length)?;
        if number < 100_000 {
            return Err(RutError::Length);
        }
        if verifier_for(number) != verifier {
            return Err(RutError::Verifier);
        }
        Ok(Self { number, verifier })
    }
}

impl fmt::Display for Rut {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.number, self.verifier)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_the_three_spellings() {
        for s in ["12.345.678-5", "12345678-5", "123456785", " 12345678-5 "] {
            assert_eq!(Rut::parse(s).expect(s).to_string(), "12345678-5");
        }
        assert_eq!(
            Rut::parse("10.000.013-k").expect("k").to_string(),
            "10000013-K"
        );
    }

    #[test]
    fn rejects_bad_ones() {
        assert_eq!(Rut::parse("12.345.678-9"), Err(RutError::Verifier));
        assert_eq!(Rut::parse(""), Err(RutError::Empty));
        assert_eq!(Rut::parse("12a45678-5"), Err(RutError::Characters));
        assert_eq!(Rut::parse("1-9"), Err(RutError::Length));
        assert_eq!(Rut::parse("12345678-X"), Err(RutError::Characters));
    }

    #[test]
    fn verifier_matches_known_values() {
        assert_eq!(verifier_for(12_345_678), '5');
        assert_eq!(verifier_for(10_000_013), 'K');
        // Every number has exactly one valid verifier.
        for n in [1_000_000u32, 7_654_321, 24_999_999] {
            let good = verifier_for(n);
            for dv in "0123456789K".chars() {
                let ok = Rut::parse(&format!("{n}-{dv}")).is_ok();
                assert_eq!(ok, dv == good, "{n}-{dv}");
            }
        }
    }
}
