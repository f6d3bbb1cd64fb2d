//! `punctual`: run the API and the engine, migrate, administer.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use punctual_server::{open_database, telemetry, Application, Settings};

/// jemalloc rather than the system allocator: a request to a job's target
/// allocates and frees many small buffers, and glibc's malloc was a quarter of
/// the engine's CPU time in a drain (BENCHMARKS.md, session 11).
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// Punctual, the HTTP job scheduler.
#[derive(Debug, Parser)]
#[command(name = "punctual", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Apply migrations, then serve the API and run the engine until SIGINT/SIGTERM.
    Serve,
    /// Apply pending migrations and exit.
    Migrate,
    /// Platform administration.
    Admin {
        #[command(subcommand)]
        command: AdminCommand,
    },
}

#[derive(Debug, Subcommand)]
enum AdminCommand {
    /// Make an existing user a platform admin.
    Grant {
        /// The user's email.
        email: String,
    },
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let settings = match Settings::load() {
        Ok(settings) => settings,
        Err(error) => {
            eprintln!("punctual: invalid configuration: {error}");
            return ExitCode::from(2);
        }
    };
    telemetry::init(&settings.log);
    match run(cli.command, settings).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("punctual: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(command: Command, settings: Settings) -> anyhow::Result<()> {
    match command {
        Command::Serve => {
            let application = Application::build(settings).await?;
            println!("punctual listening on http://{}", application.address());
            tracing::info!(address = %application.address(), "listening");
            application.run_until_stopped().await?;
            tracing::info!("stopped");
        }
        Command::Migrate => {
            let database = open_database(&settings).await?;
            database.close().await;
            println!("migrations applied");
        }
        Command::Admin {
            command: AdminCommand::Grant { email },
        } => {
            let database = open_database(&settings).await?;
            let granted =
                punctual_api::service::admin::grant_platform_admin(&database, &email).await;
            database.close().await;
            match granted {
                Ok(user_id) => println!("{email} ({user_id}) is now a platform admin"),
                Err(error) => anyhow::bail!("cannot grant platform admin to {email}: {error}"),
            }
        }
    }
    Ok(())
}
