//! `users import FILE.csv`: rows of `email,name,role[,status]`, checked in full
//! before anything is written, so a bad row applies nothing.

use std::collections::HashMap;
use std::io::Read;

use super::{Email, UserChange};

/// An empty cell (or a missing column) keeps what an existing entry has.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportRow {
    pub email: Email,
    pub change: UserChange,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("line {line}: {reason}")]
pub struct ImportError {
    pub line: u64,
    pub reason: String,
}

/// Parses the whole file. A first row whose first cell is `email` is a header.
pub fn parse_csv(input: impl Read) -> Result<Vec<ImportRow>, ImportError> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .trim(csv::Trim::All)
        .comment(Some(b'#'))
        .from_reader(input);
    let mut rows = Vec::new();
    let mut seen: HashMap<Email, u64> = HashMap::new();
    for (index, record) in reader.records().enumerate() {
        let record = record.map_err(|e| ImportError {
            line: e.position().map(|p| p.line()).unwrap_or(0),
            reason: format!("unreadable CSV: {e}"),
        })?;
        let line = record
            .position()
            .map(|p| p.line())
            .unwrap_or(index as u64 + 1);
        let bad = |reason: String| ImportError { line, reason };
        if index == 0
            && record
                .get(0)
                .is_some_and(|c| c.eq_ignore_ascii_case("email"))
        {
            continue;
        }
        if record.iter().all(str::is_empty) {
            continue;
        }
        if record.len() > 4 {
            return Err(bad(format!(
                "expected email,name,role[,status] but found {} columns",
                record.len()
            )));
        }
        let cell = |i: usize| record.get(i).filter(|c| !c.is_empty());
        let email = Email::parse(record.get(0).unwrap_or_default()).map_err(bad)?;
        if let Some(first) = seen.insert(email.clone(), line) {
            return Err(bad(format!("{email} already appears on line {first}")));
        }
        let change = UserChange {
            name: cell(1).map(str::to_owned),
            role: cell(2).map(str::parse).transpose().map_err(bad)?,
            status: cell(3).map(str::parse).transpose().map_err(bad)?,
        };
        rows.push(ImportRow { email, change });
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::allowlist::{Role, Status};

    #[test]
    fn parses_rows_with_or_without_header() {
        let rows = parse_csv("email,name,role\nAlice@Example.com,Alice A,admin\nbob@example.com,,\n# note\n\ncarol@example.com,\"Carol, C\",user,suspended\n".as_bytes()).unwrap();
        assert_eq!(rows.len(), 3);
        assert_eq!(rows[0].email.as_str(), "alice@example.com");
        assert_eq!(rows[0].change.role, Some(Role::Admin));
        assert_eq!(rows[1].change, UserChange::default());
        assert_eq!(rows[2].change.name.as_deref(), Some("Carol, C"));
        assert_eq!(rows[2].change.status, Some(Status::Suspended));
        assert_eq!(parse_csv("dave@example.com".as_bytes()).unwrap().len(), 1);
    }

    #[test]
    fn bad_rows_name_their_line() {
        let err =
            parse_csv("email,name,role\nok@example.com,Ok,user\nnot-an-email,X,user\n".as_bytes())
                .unwrap_err();
        assert_eq!(err.line, 3);
        assert!(err.reason.contains("not an email"), "{err}");

        let err = parse_csv("a@example.com,A,root\n".as_bytes()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "line 1: \"root\" is not a role (use user or admin)"
        );

        let err =
            parse_csv("a@example.com\nb@example.com\nA@example.com\n".as_bytes()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "line 3: a@example.com already appears on line 1"
        );

        let err = parse_csv("a@example.com,A,user,active,extra\n".as_bytes()).unwrap_err();
        assert_eq!(err.line, 1);
    }
}
