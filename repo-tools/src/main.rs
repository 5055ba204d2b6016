//! `repo-tools`: parse, set up logging, build the environment, run one command, render.
use clap::CommandFactory as _;
use repo_tools::ExitStatus;
use repo_tools::cli::{Cli, Command};
use std::process::ExitCode;

mod output;

fn main() -> ExitCode {
    let cli = abos_shell::printer::parse::<Cli, ExitStatus>();
    let printer = output::init(&cli.global);
    tracing::debug!(command = ?cli.command, "repo-tools starting");
    if let Command::GenerateDocs(args) = &cli.command {
        let rows = abos_shell::exit::rows::<ExitStatus>();
        let result = abos_shell::docs::generate(Cli::command(), &rows, &args.out);
        return match result {
            Ok(files) => output::finish(
                &printer,
                Ok(repo_tools::Outcome::DocsWritten { files }),
                cli.global.json,
            ),
            Err(e) => output::fatal(&printer, &e),
        };
    }
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return output::fatal(&printer, &e),
    };
    let env = repo_tools::Env::system();
    let reporter = output::Progress::new(&printer);
    let result = runtime.block_on(repo_tools::run(cli.command, &env, &reporter));
    drop(reporter); // clears a progress bar before the result is printed
    output::finish(&printer, result, cli.global.json)
}
