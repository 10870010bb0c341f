//! Opening the verification page in a browser, when there plausibly is one: `$BROWSER` if set,
//! else `xdg-open` (`open` on macOS) when a graphical session is running. Best effort only: the
//! URL is always printed too, and no failure here fails the login.

use std::process::{Command, Stdio};

/// The program and arguments that would open `url`, from the environment `var` describes; None
/// when no browser is likely to be available.
pub fn command_for(
    url: &str,
    var: impl Fn(&str) -> Option<String>,
) -> Option<(String, Vec<String>)> {
    let set = |name: &str| var(name).filter(|v| !v.trim().is_empty());
    if let Some(browser) = set("BROWSER") {
        // `$BROWSER` may list alternatives separated by ':'; `%s` marks where the URL goes.
        let first = browser.split(':').find(|s| !s.trim().is_empty())?;
        let mut words = first.split_whitespace().map(str::to_owned);
        let program = words.next()?;
        let mut args: Vec<String> = words.collect();
        if args.iter().any(|a| a.contains("%s")) {
            for a in &mut args {
                if a.contains("%s") {
                    // Shell-style quotes around the placeholder mean nothing without a shell.
                    *a = a.trim_matches(['\'', '"']).replace("%s", url);
                }
            }
        } else {
            args.push(url.to_owned());
        }
        return Some((program, args));
    }
    if cfg!(target_os = "macos") {
        return Some(("open".to_owned(), vec![url.to_owned()]));
    }
    if set("DISPLAY").is_some() || set("WAYLAND_DISPLAY").is_some() {
        return Some(("xdg-open".to_owned(), vec![url.to_owned()]));
    }
    None
}

/// Tries to open `url`; true when a browser command started. Only http(s) URLs are opened, so
/// a server cannot make us hand `file:` or option-like strings to another program.
pub fn open(url: &str) -> bool {
    let Ok(parsed) = url::Url::parse(url) else {
        return false;
    };
    if !matches!(parsed.scheme(), "http" | "https") {
        return false;
    }
    let Some((program, args)) = command_for(parsed.as_str(), |name| std::env::var(name).ok())
    else {
        return false;
    };
    let child = Command::new(&program)
        .args(&args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn();
    match child {
        Ok(mut child) => {
            // Reap it whenever it exits (xdg-open returns quickly; a browser may not).
            std::thread::spawn(move || {
                let _ = child.wait();
            });
            true
        }
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |name| {
            pairs
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| (*v).to_owned())
        }
    }

    const URL: &str = "https://b.example/activate?user_code=ABCD-EFGH";

    #[test]
    fn browser_variable_wins() {
        let (p, a) = command_for(URL, env(&[("BROWSER", "firefox --new-tab")])).unwrap();
        assert_eq!(
            (p.as_str(), a),
            ("firefox", vec!["--new-tab".to_owned(), URL.to_owned()])
        );
        let (p, a) = command_for(URL, env(&[("BROWSER", "w3m '%s':lynx")])).unwrap();
        assert_eq!((p.as_str(), a), ("w3m", vec![URL.to_owned()]));
    }

    #[test]
    #[cfg(not(target_os = "macos"))]
    fn graphical_session_uses_xdg_open_and_headless_opens_nothing() {
        let (p, a) = command_for(URL, env(&[("DISPLAY", ":0")])).unwrap();
        assert_eq!((p.as_str(), a), ("xdg-open", vec![URL.to_owned()]));
        assert!(command_for(URL, env(&[("WAYLAND_DISPLAY", "wayland-0")])).is_some());
        assert!(command_for(URL, env(&[("DISPLAY", "")])).is_none());
        assert!(command_for(URL, env(&[])).is_none());
    }

    #[test]
    fn only_web_urls_are_opened() {
        assert!(!open("file:///etc/passwd"));
        assert!(!open("--help"));
    }
}
