//! Archive path names, checked and split into components.
//!
//! An archive path is accepted only if it stays lexically inside the image
//! root: no `..` component, no leading `/`. Empty and `.` components are
//! dropped, so `./a//b/` is `a`, `b`. Symlinks are not this module's
//! business: the tree walker refuses to pass through them.

use super::error::Refusal;

/// Longest archive path accepted, in bytes (Linux PATH_MAX).
pub const MAX_PATH: usize = 4096;

/// Splits `raw` into its components, refusing anything that is not a plain
/// relative path. An empty result names the root itself.
pub fn components(raw: &[u8]) -> Result<Vec<&[u8]>, Refusal> {
    if raw.len() > MAX_PATH {
        return Err(Refusal::PathTooLong(raw.len(), MAX_PATH));
    }
    if raw.contains(&0) {
        return Err(Refusal::BadHeader("path"));
    }
    if raw.first() == Some(&b'/') {
        return Err(Refusal::Absolute);
    }
    let mut out = Vec::new();
    for comp in raw.split(|&b| b == b'/') {
        match comp {
            b"" | b"." => {}
            b".." => return Err(Refusal::Escapes),
            _ => out.push(comp),
        }
    }
    Ok(out)
}

/// Joins components back into a path for messages and map keys.
pub fn join(comps: &[&[u8]]) -> Vec<u8> {
    comps.join(&b'/')
}

/// Lossy text of a path for messages.
pub fn show(raw: &[u8]) -> String {
    String::from_utf8_lossy(raw).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn components_dot_slash_and_empty_dropped() {
        let c = components(b"./a//b/./c/").unwrap();
        assert_eq!(c, vec![&b"a"[..], b"b", b"c"]);
    }

    #[test]
    fn components_root_forms_are_empty() {
        assert!(components(b"./").unwrap().is_empty());
        assert!(components(b".").unwrap().is_empty());
    }

    #[test]
    fn components_dotdot_anywhere_refused() {
        assert_eq!(components(b"../x"), Err(Refusal::Escapes));
        assert_eq!(components(b"a/../../x"), Err(Refusal::Escapes));
        assert_eq!(components(b"a/.."), Err(Refusal::Escapes));
    }

    #[test]
    fn components_leading_slash_refused() {
        assert_eq!(components(b"/etc/x"), Err(Refusal::Absolute));
    }

    #[test]
    fn components_overlong_refused() {
        let long = vec![b'a'; MAX_PATH + 1];
        assert_eq!(
            components(&long),
            Err(Refusal::PathTooLong(MAX_PATH + 1, MAX_PATH))
        );
    }

    #[test]
    fn components_dotdot_prefix_in_name_allowed() {
        assert_eq!(components(b"..a/b..").unwrap(), vec![&b"..a"[..], b"b.."]);
    }
}
