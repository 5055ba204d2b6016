//! `repo-tools`: parse, set up logging, build the environment, run one command, render.
use clap::Parser;
use repo_tools::cli::Cli;
use std::process::ExitCode;

mod output;

fn main() -> ExitCode {
    let cli = Cli::parse();
    output::init_logging(&cli.global);
    tracing::debug!(command = ?cli.command, "repo-tools starting");
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return output::fatal(&e),
    };
    let env = repo_tools::Env::system();
    let reporter = output::Progress::new(&cli.global);
    let result = runtime.block_on(repo_tools::run(cli.command, &env, &reporter));
    drop(reporter); // clears a progress bar before the result is printed
    output::finish(result, cli.global.json)
}
