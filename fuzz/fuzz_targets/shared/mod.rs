//! Helpers more than one target needs (each target includes this file).

/// `token` with the fuzzer's one-byte change, if it asked for one; `None`
/// when the change leaves no text (the broker only ever sees text).
pub fn altered(token: &str, change: Option<(usize, u8)>) -> Option<String> {
    let mut bytes = token.as_bytes().to_vec();
    if let Some((at, byte)) = change {
        let at = at % bytes.len();
        bytes[at] = byte;
    }
    String::from_utf8(bytes).ok()
}
