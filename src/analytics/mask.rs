//! Masks personal data in free text kept for analytics: RUTs, e-mail addresses and phone
//! numbers. Deliberately greedy: a false mask costs a word, a missed one leaks data.

use crate::oirs::Rut;

/// Returns `text` with e-mails, RUTs and phone-like numbers replaced by placeholders.
pub fn mask_personal_data(text: &str) -> String {
    let emails_masked: Vec<String> = text
        .split(' ')
        .map(|w| {
            if looks_like_email(w) {
                "[correo]".to_string()
            } else {
                w.to_string()
            }
        })
        .collect();
    mask_numbers(&emails_masked.join(" "))
}

fn looks_like_email(word: &str) -> bool {
    let w = word.trim_matches(|c: char| !c.is_alphanumeric());
    match w.split_once('@') {
        Some((user, domain)) => {
            !user.is_empty() && domain.contains('.') && !domain.starts_with('.')
        }
        None => false,
    }
}

/// Finds runs made of digits and the separators people type inside numbers; a run holding
/// seven or more digits is a RUT (when it validates) or a phone number.
fn mask_numbers(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_ascii_digit() || (c == '+' && chars.get(i + 1).is_some_and(|n| n.is_ascii_digit()))
        {
            let start = i;
            let mut end = i;
            let mut digits = 0;
            let mut j = i;
            while j < chars.len() {
                let ch = chars[j];
                if ch.is_ascii_digit() {
                    digits += 1;
                    end = j + 1;
                } else if matches!(ch, 'k' | 'K') && j > start && chars[j - 1] == '-' {
                    end = j + 1;
                    break;
                } else if !matches!(ch, ' ' | '.' | '-' | '+' | '(' | ')') {
                    break;
                }
                j += 1;
            }
            // Folios (OIRS-2026-000123) are public identifiers, not personal data.
            let folio = start >= 5
                && chars[start - 5..start]
                    .iter()
                    .collect::<String>()
                    .eq_ignore_ascii_case("oirs-");
            if digits >= 7 && !folio {
                let run: String = chars[start..end].iter().collect();
                let rut_like: String = run.chars().filter(|c| !c.is_whitespace()).collect();
                if Rut::parse(&rut_like).is_ok() && run.chars().any(|c| c == '-' || c == '.') {
                    out.push_str("[rut]");
                } else {
                    out.push_str("[teléfono]");
                }
                i = end;
                continue;
            }
            let run: String = chars[start..end.max(start + 1)].iter().collect();
            out.push_str(&run);
            i = end.max(start + 1);
            continue;
        }
        out.push(c);
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_ruts_emails_and_phones() {
        let m = mask_personal_data("mi rut es 12.345.678-5 y mi correo juan.perez@gmail.com");
        assert_eq!(m, "mi rut es [rut] y mi correo [correo]");
        let m = mask_personal_data("llamenme al +56 9 8765 4321 porfa");
        assert_eq!(m, "llamenme al [teléfono] porfa");
        let m = mask_personal_data("fono 412406400, rut 10000013-k.");
        assert_eq!(m, "fono [teléfono], rut [rut].");
    }

    #[test]
    fn leaves_ordinary_numbers() {
        let m = mask_personal_data("ley 20285, folio OIRS-2026-000123, a las 17:30");
        assert_eq!(m, "ley 20285, folio OIRS-2026-000123, a las 17:30");
    }
}
