//! Input rules shared by several operations, each returning a message fit for the caller.

use crate::AppError;

pub fn username(s: &str) -> Result<(), AppError> {
    let ok = (3..=64).contains(&s.len())
        && s.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-')
        });
    if ok {
        Ok(())
    } else {
        Err(AppError::Validation(
            "username must be 3–64 characters of lowercase letters, digits, '.', '_' or '-'".into(),
        ))
    }
}

pub fn email(s: &str) -> Result<(), AppError> {
    let valid = s.len() <= 254
        && !s.chars().any(|c| c.is_whitespace() || c.is_control())
        && s.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty()
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
                && !domain.contains('@')
        });
    if valid {
        Ok(())
    } else {
        Err(AppError::Validation(
            "email must be a valid address such as ada@example.com".into(),
        ))
    }
}

pub fn password(s: &str) -> Result<(), AppError> {
    let n = s.chars().count();
    if n < 12 {
        return Err(AppError::Validation(
            "password must be at least 12 characters".into(),
        ));
    }
    if s.len() > 1024 {
        return Err(AppError::Validation(
            "password must be at most 1024 bytes".into(),
        ));
    }
    Ok(())
}

/// A display name: 1–`max` characters after trimming, no control characters.
pub fn name(field: &str, s: &str, max: usize) -> Result<String, AppError> {
    let t = s.trim();
    if t.is_empty() || t.chars().count() > max || t.chars().any(char::is_control) {
        return Err(AppError::Validation(format!(
            "{field} must be 1–{max} characters without control characters"
        )));
    }
    Ok(t.to_owned())
}

pub fn description(s: &str) -> Result<(), AppError> {
    if s.chars().count() > 1000 {
        return Err(AppError::Validation(
            "description must be at most 1000 characters".into(),
        ));
    }
    if s.chars().any(|c| c.is_control() && c != '\n') {
        return Err(AppError::Validation(
            "description must not contain control characters other than line breaks (\\n)".into(),
        ));
    }
    Ok(())
}

/// Clamps list parameters to sane bounds.
pub fn page(limit: Option<i64>, offset: Option<i64>) -> Result<(i64, i64), AppError> {
    let limit = limit.unwrap_or(50);
    let offset = offset.unwrap_or(0);
    if !(1..=500).contains(&limit) || offset < 0 {
        return Err(AppError::Validation(
            "limit must be 1–500 and offset must not be negative".into(),
        ));
    }
    Ok((limit, offset))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(r: Result<(), AppError>) -> String {
        r.unwrap_err().to_string()
    }

    #[test]
    fn description_names_what_is_wrong() {
        assert!(description("two\nlines").is_ok());
        assert!(message(description(&"x".repeat(1001))).contains("at most 1000"));
        for bad in ["nul\0here", "bell\u{7}", "tab\t"] {
            let m = message(description(bad));
            assert!(m.contains("control characters"), "{bad:?}: {m}");
            assert!(!m.contains("1000"), "{bad:?}: {m}");
        }
    }
}
