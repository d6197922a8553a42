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

/// The mask for text that leaves the analysts' hands (the mayor's report): on top of
/// [`mask_personal_data`], every number (house numbers, ages, amounts), what follows a word
/// that introduces an address or a name, and capitalised words inside a sentence (names of
/// people and streets) are replaced. Coarse on purpose: the report wants the question, not
/// who asked it.
pub fn mask_for_report(text: &str) -> String {
    const ADDRESS: &[&str] = &[
        "calle",
        "avenida",
        "av",
        "av.",
        "pasaje",
        "psje",
        "pje",
        "villa",
        "poblacion",
        "población",
        "pobl",
        "block",
        "depto",
        "departamento",
        "camino",
        "parcela",
        "sector",
        "condominio",
        "direccion",
        "dirección",
        "domicilio",
    ];
    const NAME: &[&str] = &[
        "llamo", "nombre", "soy", "sr", "sr.", "sra", "sra.", "don", "doña",
    ];
    let base = mask_personal_data(text);
    let mut out: Vec<String> = Vec::new();
    // What the previous word asks to hide: the next words up to punctuation.
    let mut hiding: Option<&str> = None;
    let mut sentence_start = true;
    for word in base.split_whitespace() {
        let bare: String = word
            .trim_matches(|c: char| !c.is_alphanumeric() && c != '[' && c != ']')
            .to_string();
        let lower = bare.to_lowercase();
        let ends_clause = word.ends_with(['.', ',', ';', ':', '?', '!']);
        let placeholder = if bare.starts_with('[') {
            None
        } else if let Some(p) = hiding {
            Some(p)
        } else if bare.chars().any(|c| c.is_ascii_digit()) {
            Some("[número]")
        } else if !sentence_start
            && bare.chars().next().is_some_and(char::is_uppercase)
            && bare.chars().skip(1).any(char::is_lowercase)
        {
            Some("[nombre]")
        } else {
            None
        };
        match placeholder {
            Some(p) => {
                // One placeholder for a run of hidden words.
                if out
                    .last()
                    .map(|w| w.trim_end_matches(['.', ',', ';', ':', '?', '!']))
                    != Some(p)
                {
                    out.push(p.to_string());
                }
                if ends_clause {
                    if let Some(last) = out.last_mut() {
                        last.push(word.chars().last().unwrap_or('.'));
                    }
                }
            }
            None => out.push(word.to_string()),
        }
        if ends_clause {
            hiding = None;
        } else if hiding.is_none() {
            if ADDRESS.contains(&lower.as_str()) {
                hiding = Some("[dirección]");
            } else if NAME.contains(&lower.as_str()) {
                hiding = Some("[nombre]");
            }
        }
        sentence_start = word.ends_with(['.', '?', '!']);
    }
    out.join(" ")
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

    #[test]
    fn the_report_mask_hides_names_addresses_and_numbers() {
        assert_eq!(
            mask_for_report("Hola, me llamo Juan Soto y vivo en calle Los Aromos 1234"),
            "Hola, me llamo [nombre]"
        );
        assert_eq!(
            mask_for_report("mi hijo Pedro tiene 7 años y diabetes"),
            "mi hijo [nombre] tiene [número] años y diabetes"
        );
        assert_eq!(
            mask_for_report("vivo en pasaje el roble, no pasa el camion"),
            "vivo en pasaje [dirección], no pasa el camion"
        );
        assert_eq!(
            mask_for_report("Donde pago el permiso? Gracias"),
            "Donde pago el permiso? Gracias"
        );
    }
}
