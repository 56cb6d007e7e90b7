//! What happens when nobody reads the output any more.
//!
//! `just | head -4` closes the pipe after four lines, and Rust's `println!` then panics with
//! "failed printing to stdout: Broken pipe": a scary message for something the learner asked
//! for. Rust ignores SIGPIPE, which would otherwise end the process quietly the Unix way, so
//! the runner does the same by hand: a panic about a closed pipe ends the process at once, with
//! nothing printed and success (the reader got what it wanted).

/// Installs the panic hook that turns a write to a closed pipe into a quiet exit. Every other
/// panic is printed as usual.
pub fn end_quietly_on_a_closed_pipe() {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let message = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied())
            .unwrap_or("");
        if is_closed_pipe(message) {
            // The one place the runner exits by hand: the panic is under way, and unwinding
            // would only try to print again.
            std::process::exit(0);
        }
        previous(info);
    }));
}

/// Whether a panic message is std's report of a write to a closed pipe.
fn is_closed_pipe(message: &str) -> bool {
    message.starts_with("failed printing to std") && message.contains("Broken pipe")
}

#[cfg(test)]
mod tests {
    use super::is_closed_pipe;

    #[test]
    fn only_a_closed_pipe_is_quiet() {
        assert!(is_closed_pipe(
            "failed printing to stdout: Broken pipe (os error 32)"
        ));
        assert!(is_closed_pipe(
            "failed printing to stderr: Broken pipe (os error 32)"
        ));
        assert!(!is_closed_pipe("failed printing to stdout: No space left"));
        assert!(!is_closed_pipe("index out of bounds"));
    }
}
