//! Generated database passwords.
//!
//! They go into `postgresql://user:password@host/db` URLs, shell commands and `.pgpass` files,
//! so they use letters and digits only: nothing to percent-encode, quote or escape.

use crate::random_bytes;

const ALPHABET: &[u8; 62] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
/// 43 characters of 62 symbols: log2(62) × 43 ≈ 256 bits.
pub(crate) const PASSWORD_LEN: usize = 43;

/// A new random password of 43 ASCII letters and digits (about 256 bits), safe in URLs.
pub fn generate_password() -> String {
    let mut password = String::with_capacity(PASSWORD_LEN);
    let mut buf = [0u8; 64];
    while password.len() < PASSWORD_LEN {
        random_bytes(&mut buf);
        // Rejection sampling: 248 = 4 × 62, so every symbol is equally likely.
        for &b in buf.iter().filter(|&&b| b < 248) {
            if password.len() == PASSWORD_LEN {
                break;
            }
            password.push(char::from(ALPHABET[usize::from(b % 62)]));
        }
    }
    password
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn passwords_are_long_url_safe_and_unique() {
        let passwords: Vec<String> = (0..2000).map(|_| generate_password()).collect();
        let mut seen_chars = HashSet::new();
        for p in &passwords {
            assert_eq!(p.len(), PASSWORD_LEN);
            assert!(p.bytes().all(|b| b.is_ascii_alphanumeric()), "{p}");
            seen_chars.extend(p.bytes());
        }
        // ≥ 192 bits, as promised.
        assert!(PASSWORD_LEN as f64 * 62f64.log2() >= 256.0 - 0.5);
        let unique: HashSet<_> = passwords.iter().collect();
        assert_eq!(unique.len(), passwords.len());
        assert_eq!(seen_chars.len(), 62, "every symbol turns up");
    }
}
