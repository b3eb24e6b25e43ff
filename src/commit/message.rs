//! Commit titles: the user's `--commit-message`, or one saying what the commit does.
//!
//! Titles are built from the operations actually sent (after dropping deletions of paths the
//! Hub does not have and files the repo's `.gitignore` ignores), so a temporary file created
//! and removed before the commit never shows up in one.

/// What a commit does to one path (or, for a rename, two).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    Add(String),
    Update(String),
    Delete(String),
    Rename { from: String, to: String },
}

/// "Add config.json via hubfs", "Rename a to b via hubfs", and for several changes
/// "Add 3 files, update 1, delete 2 via hubfs".
pub fn title(effects: &[Effect]) -> String {
    match effects {
        [] => "Update via hubfs".to_string(),
        [Effect::Add(p)] => format!("Add {p} via hubfs"),
        [Effect::Update(p)] => format!("Update {p} via hubfs"),
        [Effect::Delete(p)] => format!("Delete {p} via hubfs"),
        [Effect::Rename { from, to }] => format!("Rename {from} to {to} via hubfs"),
        _ => {
            let count = |f: fn(&Effect) -> bool| effects.iter().filter(|e| f(e)).count();
            let kinds = [
                ("add", count(|e| matches!(e, Effect::Add(_)))),
                ("update", count(|e| matches!(e, Effect::Update(_)))),
                ("delete", count(|e| matches!(e, Effect::Delete(_)))),
                ("rename", count(|e| matches!(e, Effect::Rename { .. }))),
            ];
            let mut parts = Vec::new();
            for (verb, n) in kinds.into_iter().filter(|(_, n)| *n > 0) {
                if parts.is_empty() {
                    let mut v = verb.to_string();
                    v[..1].make_ascii_uppercase();
                    parts.push(format!("{v} {n} file{}", if n == 1 { "" } else { "s" }));
                } else {
                    parts.push(format!("{verb} {n}"));
                }
            }
            format!("{} via hubfs", parts.join(", "))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_change_names_it() {
        assert_eq!(title(&[Effect::Add("a.txt".into())]), "Add a.txt via hubfs");
        assert_eq!(title(&[Effect::Update("a".into())]), "Update a via hubfs");
        assert_eq!(title(&[Effect::Delete("a".into())]), "Delete a via hubfs");
        assert_eq!(
            title(&[Effect::Rename {
                from: "a".into(),
                to: "b".into()
            }]),
            "Rename a to b via hubfs"
        );
    }

    #[test]
    fn several_changes_are_counted() {
        let e = [
            Effect::Add("a".into()),
            Effect::Delete("x".into()),
            Effect::Add("b".into()),
            Effect::Update("c".into()),
            Effect::Add("d".into()),
            Effect::Delete("y".into()),
        ];
        assert_eq!(title(&e), "Add 3 files, update 1, delete 2 via hubfs");
        let d = [Effect::Delete("x".into()), Effect::Delete("y".into())];
        assert_eq!(title(&d), "Delete 2 files via hubfs");
        let u = [Effect::Update("x".into()), Effect::Delete("y".into())];
        assert_eq!(title(&u), "Update 1 file, delete 1 via hubfs");
    }
}
