fn main() -> std::process::ExitCode {
    ventanilla::cli::main()
}
