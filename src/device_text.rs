//! Text a device sends — serial numbers, PINs, terminal aliases, work codes — checked
//! before it is believed. A broken or hostile device can send a 3 MB "serial number"
//! (which would be copied into every punch), NUL bytes, or bidirectional-override
//! characters that make a PIN read differently on a screen than it is stored. Such text
//! is refused with the reason (the record is quarantined, or the device reported), and
//! what is kept for a person to look at is cut to a readable length.

/// The most characters a device string may have, by what it is.
pub const SERIAL: usize = 64;
pub const PIN: usize = 32;
pub const ALIAS: usize = 128;
pub const WORK_CODE: usize = 32;

/// Why `text` (a `what`, e.g. "serial number") cannot be believed, if it cannot.
pub fn check(what: &str, text: &str, limit: usize) -> Result<(), String> {
    let length = text.chars().count();
    if length > limit {
        return Err(format!(
            "the {what} is {length} characters long (at most {limit} are plausible)"
        ));
    }
    if let Some(bad) = text.chars().find(|c| hides_or_reorders(*c)) {
        return Err(format!(
            "the {what} holds the character U+{:04X}, which no real {what} does",
            u32::from(bad)
        ));
    }
    Ok(())
}

/// NUL and the other control characters, and the bidirectional controls that change
/// the order text is shown in.
fn hides_or_reorders(c: char) -> bool {
    c.is_control() || matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// `text` cut to `limit` characters for messages and files, saying how long it was.
pub fn excerpt(text: &str, limit: usize) -> String {
    let length = text.chars().count();
    if length <= limit {
        return text.to_owned();
    }
    let head: String = text.chars().take(limit).collect();
    format!("{head}… ({length} characters)")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_hidden_and_reordering_text_is_refused_with_the_reason() {
        assert_eq!(check("PIN", "1001", PIN), Ok(()));
        assert_eq!(check("alias", "Main gate – Ünité", ALIAS), Ok(()));
        let long = "A".repeat(3 * 1024 * 1024);
        assert!(
            check("serial number", &long, SERIAL)
                .unwrap_err()
                .contains("3145728 characters")
        );
        assert!(
            check("PIN", "10\u{0}01", PIN)
                .unwrap_err()
                .contains("U+0000")
        );
        assert!(
            check("PIN", "\u{202E}1001", PIN)
                .unwrap_err()
                .contains("U+202E")
        );
        assert!(check("PIN", "1001\u{2066}", PIN).is_err());
        assert_eq!(excerpt(&long, 8), "AAAAAAAA… (3145728 characters)");
    }
}
