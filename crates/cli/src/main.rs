//! `chipi`: the demo of the whole system and the local stack. See `chipi --help`.

use std::path::PathBuf;
use std::process::ExitCode;

use chipi_cli::commands::{
    self, CliError, Network, Outcome, PolicyCommand, SessionCommand, WalletCommand,
};
use chipi_cli::{demo, dev, exit};
use clap::{Parser, Subcommand};

/// Chipi session keys on Starknet: a one-command demo of the whole system (contract,
/// SDK, paymaster, node), a local stack to try it with, and the wallet, session and
/// policy commands for real use against any node and paymaster.
///
/// Files are the JS SDK's JSON shapes: a session file written by Chipi's JS SDK works
/// here, and ours works there. PINs come from CHIPI_OWNER_PIN / CHIPI_SESSION_PIN or are
/// typed without echo, never from a flag; the bearer token from CHIPI_TOKEN.
#[derive(Debug, Parser)]
#[command(name = "chipi", version, after_long_help = exit::HELP)]
struct Cli {
    /// Print one JSON document (results and errors alike).
    #[arg(long, global = true)]
    json: bool,
    #[command(flatten)]
    network: Network,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the whole lifecycle on an embedded devnet with the paymaster, narrated:
    /// a gasless wallet, a session with a whitelist, a call budget and a spending policy,
    /// transfers, refusals with their codes, revocation. Under a minute.
    Demo,
    /// Serve the local stack (devnet + paymaster) until Ctrl-C and print how to use it:
    /// the node URL, the paymaster URL, the app's keys, a user token, funded accounts and
    /// the session-account class hash.
    Dev {
        /// The paymaster's port on 127.0.0.1 (a free one by default).
        #[arg(long)]
        port: Option<u16>,
        /// The node's port on 127.0.0.1 (a free one by default).
        #[arg(long)]
        rpc_port: Option<u16>,
        /// Keep the stack's state between runs: the paymaster's SQLite database in this
        /// file and the chain beside it (`<FILE>.chain.json`). Without it, both are fresh.
        #[arg(long)]
        db: Option<PathBuf>,
        /// The local app's sponsorship policy: a TOML file with the keys of
        /// `[apps.sponsorship]` (limits, allowlists, webhook; docs/paymaster.md).
        #[arg(long)]
        policy: Option<PathBuf>,
        #[command(subcommand)]
        command: Option<DevCommand>,
    },
    /// Create or show a wallet.
    #[command(subcommand)]
    Wallet(WalletCommand),
    /// Create, register, use, inspect, list and revoke session keys.
    #[command(subcommand)]
    Session(SessionCommand),
    /// Set, read and remove a session's spending policy.
    #[command(subcommand)]
    Policy(PolicyCommand),
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
            return ExitCode::from(exit::FAILED);
        }
    };
    runtime.block_on(run(cli))
}

fn report(json: bool, result: Result<Outcome, CliError>) -> ExitCode {
    match result {
        Ok(outcome) => {
            if json {
                println!("{}", outcome.json);
            } else {
                println!("{}", outcome.text);
            }
            ExitCode::SUCCESS
        }
        Err(error) => {
            if json {
                println!("{}", error.to_json());
            } else {
                eprintln!("error: {error}");
            }
            ExitCode::from(error.exit)
        }
    }
}

async fn run(cli: Cli) -> ExitCode {
    let json = cli.json;
    match cli.command {
        Command::Wallet(command) => report(json, commands::wallet(&cli.network, command).await),
        Command::Session(command) => report(json, commands::session(&cli.network, command).await),
        Command::Policy(command) => report(json, commands::policy(&cli.network, command).await),
        Command::Demo => match demo::run(json).await {
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
                    ExitCode::from(exit::FAILED)
                }
            }
            Err(error) => {
                eprintln!("{error}");
                ExitCode::from(exit::NETWORK)
            }
        },
        Command::Dev {
            command: Some(DevCommand::Token { user }),
            ..
        } => {
            println!("{}", chipi_stack::user_token(&user));
            ExitCode::SUCCESS
        }
        Command::Dev {
            port,
            rpc_port,
            db,
            policy,
            ..
        } => {
            let policy = match policy.as_deref().map(dev::read_policy).transpose() {
                Ok(policy) => policy,
                Err(error) => {
                    eprintln!("{error}");
                    return ExitCode::from(exit::USAGE);
                }
            };
            let options = dev::DevOptions {
                listen: port.map(|p| std::net::SocketAddr::from(([127, 0, 0, 1], p))),
                rpc_port,
                database: db,
                policy,
            };
            let stack = match dev::start(options).await {
                Ok(stack) => stack,
                Err(error) => {
                    eprintln!("{error}");
                    return ExitCode::from(exit::NETWORK);
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
