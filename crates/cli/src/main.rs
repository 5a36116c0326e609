//! `chipi`: the demo of the whole system and the local stack. See `chipi --help`.

use std::path::PathBuf;
use std::process::ExitCode;

use chipi_cli::{demo, dev};
use clap::{Parser, Subcommand};

/// Chipi session keys on Starknet: a one-command demo of the whole system (contract,
/// SDK, paymaster, node) and a local stack to try it with.
#[derive(Debug, Parser)]
#[command(name = "chipi", version, after_long_help = EXIT_CODES)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

const EXIT_CODES: &str = "\
Exit codes:
  0  success (for `demo`: every step behaved as expected)
  1  a step did not behave as expected (`demo`)
  2  bad usage (clap)
  3  the local stack could not start (devnet, paymaster)";

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the whole lifecycle on an embedded devnet with the paymaster, narrated:
    /// a gasless wallet, a session with a whitelist, a call budget and a spending policy,
    /// transfers, refusals with their codes, revocation. Under a minute.
    Demo {
        /// Print one JSON document instead of the narration.
        #[arg(long)]
        json: bool,
    },
    /// Serve the local stack (devnet + paymaster) until Ctrl-C and print how to use it.
    Dev {
        /// The paymaster's port on 127.0.0.1 (a free one by default).
        #[arg(long)]
        port: Option<u16>,
        /// The paymaster's SQLite file, kept between runs (a temporary one by default).
        #[arg(long)]
        db: Option<PathBuf>,
        /// Print the connection details as JSON.
        #[arg(long)]
        json: bool,
        #[command(subcommand)]
        command: Option<DevCommand>,
    },
}

#[derive(Debug, Subcommand)]
enum DevCommand {
    /// Print a user token (HS256, one hour) for the local stack's app.
    Token {
        /// The user id (`sub`, the `externalUserId`).
        user: String,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("cannot start the runtime: {error}");
            return ExitCode::from(3);
        }
    };
    runtime.block_on(run(cli))
}

async fn run(cli: Cli) -> ExitCode {
    match cli.command {
        Command::Demo { json } => match demo::run(json).await {
            Ok(report) => {
                if json {
                    match serde_json::to_string_pretty(&report) {
                        Ok(text) => println!("{text}"),
                        Err(error) => eprintln!("cannot print the report: {error}"),
                    }
                } else {
                    print!("{}", demo::summary(&report));
                }
                if report.ok {
                    ExitCode::SUCCESS
                } else {
                    ExitCode::from(1)
                }
            }
            Err(error) => {
                eprintln!("{error}");
                ExitCode::from(3)
            }
        },
        Command::Dev {
            command: Some(DevCommand::Token { user }),
            ..
        } => {
            println!("{}", chipi_stack::user_token(&user));
            ExitCode::SUCCESS
        }
        Command::Dev { port, db, json, .. } => {
            let options = dev::DevOptions {
                listen: port.map(|p| std::net::SocketAddr::from(([127, 0, 0, 1], p))),
                database: db,
            };
            let stack = match dev::start(options).await {
                Ok(stack) => stack,
                Err(error) => {
                    eprintln!("{error}");
                    return ExitCode::from(3);
                }
            };
            if json {
                match serde_json::to_string_pretty(&stack.info) {
                    Ok(text) => println!("{text}"),
                    Err(error) => eprintln!("cannot print: {error}"),
                }
            } else {
                print!("{}", dev::describe(&stack.info));
                println!("serving; Ctrl-C stops");
            }
            let _ = tokio::signal::ctrl_c().await;
            stack.paymaster.stop().await;
            drop(stack.devnet);
            ExitCode::SUCCESS
        }
    }
}
