//! The `replisim` command-line tool over the built-in protocols.

fn main() -> std::process::ExitCode {
    replisim::cli::main(replisim::replication::registry())
}
