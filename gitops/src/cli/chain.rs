//! An error and its causes on one line, each cause once, for the binaries to print.

use std::error::Error;

/// `error: cause: cause's cause`, leaving out a cause whose text the line already holds: an
/// error that writes its source into its own message (`"reading x: {source}"`) and also returns
/// it from `source()` would otherwise print that source twice.
pub fn error_chain(error: &dyn Error) -> String {
    let mut line = error.to_string();
    let mut cause = error.source();
    while let Some(e) = cause {
        let text = e.to_string();
        if !line.contains(&text) {
            line.push_str(": ");
            line.push_str(&text);
        }
        cause = e.source();
    }
    line
}

#[cfg(test)]
mod tests {
    use super::error_chain;

    #[derive(Debug, thiserror::Error)]
    enum Outer {
        #[error("reading params.yaml: {source}")]
        Echoes { source: Inner },
        #[error("reading params.yaml")]
        Silent(#[source] Inner),
    }

    #[derive(Debug, thiserror::Error)]
    #[error("line 3: {0}")]
    struct Inner(#[source] std::io::Error);

    fn io() -> std::io::Error {
        std::io::Error::other("disk on fire")
    }

    #[test]
    fn each_cause_is_printed_once() {
        let echoes = Outer::Echoes { source: Inner(io()) };
        assert_eq!(error_chain(&echoes), "reading params.yaml: line 3: disk on fire");
        assert_eq!(error_chain(&Outer::Silent(Inner(io()))), "reading params.yaml: line 3: disk on fire");
    }
}
