//! The command line: every command and flag with its help text (clap derive). Names
//! and flags are an interface: scripts rely on them.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{ArgAction, ArgGroup, Args, Parser, Subcommand};

const ABOUT: &str = "vaultlink's command-line tool: a one-command demo, a mock VGS server, \
and insert/retrieve/delete/check/import against a VGS vault";

const CREDENTIALS_HELP: &str = "\
Credentials (insert, retrieve, delete, erase, check, import) come from the environment or from
a --config TOML file, never from a flag (a flag would land the secret in shell history):
  VGS_CLIENT_ID      OAuth client id (API v1: access-credentials username)
  VGS_CLIENT_SECRET  its secret (API v1: password)
  VGS_VAULT_ID       the vault id, tnt…
  VGS_ENVIRONMENT    sandbox | live | live-eu-1
  VGS_ENDPOINT       a custom base URL instead (https, or http to loopback, e.g. the
                     URL `vaultctl mock serve` prints)
  VGS_API            v2 (default) | v1 | cmp (the Card Management Platform: a card is
                     one object with a card id; VGS_CLIENT_ID is then a CMP service
                     account, VGS_VAULT_ID its tenant); --api overrides it
  VGS_FINGERPRINTING on (default) | off: the vault's fingerprinting setting (CMP: its
                     duplicate-card check); it decides what delete may remove and
                     whether an insert may be re-sent. `vaultctl check` probes it.
The --config file has the same settings as keys: client_id, client_secret, vault_id,
environment, endpoint, api, fingerprinting. Settings the file leaves out are read from
the environment.

Card JSON (insert's stdin, each line of import, retrieve --reveal --json) uses
Hyperswitch's field names: card_number, card_exp_month, card_exp_year, and optionally
card_cvc and card_holder_name; any other field is refused.

Exit codes: 0 success, 1 failure (one line on stderr with the cause and the fix),
2 bad usage, 3 import finished but some lines failed.
Logs: -v / -vv, or RUST_LOG (e.g. RUST_LOG=vault_vgs=debug); they never carry card
data or secrets.";

/// `vaultctl`: the parsed command line.
#[derive(Debug, Parser)]
#[command(name = "vaultctl", version, about = ABOUT, after_long_help = CREDENTIALS_HELP)]
pub(crate) struct Cli {
    /// More logs on stderr: -v debug, -vv trace for vaultlink's crates (RUST_LOG
    /// overrides).
    #[arg(short, long, action = ArgAction::Count, global = true)]
    pub(crate) verbose: u8,

    /// What to do.
    #[command(subcommand)]
    pub(crate) command: Command,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// See vaultlink work end to end against the embedded mock VGS: no account, no
    /// network.
    Demo(DemoArgs),
    /// The mock VGS server (`vaultctl mock serve`).
    #[command(subcommand)]
    Mock(MockCommand),
    /// Store one card, read as JSON from stdin; prints its aliases.
    #[command(after_long_help = CREDENTIALS_HELP)]
    Insert(InsertArgs),
    /// Turn a card's aliases back into the card; masked unless --reveal.
    #[command(long_about = RETRIEVE_ABOUT, after_long_help = CREDENTIALS_HELP)]
    Retrieve(RetrieveArgs),
    /// Delete a card's own records from the vault; records other cards may share stay.
    #[command(long_about = DELETE_ABOUT, after_long_help = CREDENTIALS_HELP)]
    Delete(DeleteArgs),
    /// Erase a card's values from the vault EVERYWHERE: every stored card holding an
    /// equal value loses it too (a right-to-erasure request).
    #[command(long_about = ERASE_ABOUT, after_long_help = CREDENTIALS_HELP)]
    Erase(EraseArgs),
    /// Fetch a token, read an alias that cannot exist, and probe fingerprinting (store
    /// a random test value twice, then delete it): reports whether the credentials,
    /// the scope and the vault id work, and the vault's fingerprinting setting.
    #[command(after_long_help = CREDENTIALS_HELP)]
    Check(CheckArgs),
    /// Pay through the vault's outbound proxy: send a processor request whose body
    /// template (stdin) names card fields; the vault puts the card in, this process
    /// only ever holds its aliases.
    #[command(long_about = FORWARD_ABOUT, after_long_help = PROXY_HELP)]
    Forward(ForwardArgs),
    /// Bulk migration: store every card of a JSON-lines file, writing their aliases to
    /// --out.
    #[command(long_about = IMPORT_ABOUT, after_long_help = CREDENTIALS_HELP)]
    Import(ImportArgs),
    /// Re-store cards that Hyperswitch's VGS connector or VGS Collect left in the vault
    /// in vaultlink's layout (CVC volatile, never persisted), removing the old records
    /// once the new ones read back. A dry run unless --apply.
    #[command(long_about = MIGRATE_ABOUT, after_long_help = CREDENTIALS_HELP)]
    Migrate(MigrateArgs),
    /// Benchmarks against the mock VGS: the connector against a bare HTTP client,
    /// token fetches under concurrency, and bulk import throughput and memory.
    #[command(long_about = BENCH_ABOUT)]
    Bench(BenchArgs),
}

impl Command {
    /// Whether the command was asked for JSON output (errors then go to stdout as a
    /// JSON document too).
    pub(crate) fn json(&self) -> bool {
        match self {
            Command::Demo(args) => args.json,
            Command::Insert(args) => args.json,
            Command::Retrieve(args) => args.json,
            Command::Delete(args) => args.json,
            Command::Erase(args) => args.json,
            Command::Check(args) => args.json,
            Command::Forward(args) => args.json,
            Command::Import(args) => args.json,
            Command::Migrate(args) => args.json,
            Command::Bench(args) => args.json,
            Command::Mock(_) => false,
        }
    }
}

/// `vaultctl demo`.
#[derive(Debug, Args)]
pub(crate) struct DemoArgs {
    /// Print one JSON document instead of the walk-through.
    #[arg(long)]
    pub(crate) json: bool,
}

/// `vaultctl mock …`.
#[derive(Debug, Subcommand)]
pub(crate) enum MockCommand {
    /// Run the mock VGS in the foreground until Ctrl-C or SIGTERM. With no flags it
    /// serves the demo vault and credentials. The first stdout line is exactly
    /// `listening on http://ADDR`.
    Serve(ServeArgs),
}

/// `vaultctl mock serve`.
#[derive(Debug, Args)]
pub(crate) struct ServeArgs {
    /// Address to listen on; port 0 picks a free port (the first line says which).
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub(crate) addr: SocketAddr,
    /// A vault the mock serves (repeatable). Default: tntdemo00001.
    #[arg(long = "vault-id", value_name = "TNT…")]
    pub(crate) vault_ids: Vec<String>,
    /// OAuth client id accepted by the token endpoint (API v2). Default: demo-client.
    #[arg(long, value_name = "ID", requires = "client_secret")]
    pub(crate) client_id: Option<String>,
    /// That client's secret (a mock credential, not a real one). Default: demo-secret.
    #[arg(long, value_name = "S", requires = "client_id")]
    pub(crate) client_secret: Option<String>,
    /// API v1 access-credentials username, for the first vault. Default: demo-user.
    #[arg(long, value_name = "U", requires = "password")]
    pub(crate) username: Option<String>,
    /// API v1 access-credentials password. Default: demo-password.
    #[arg(long, value_name = "P", requires = "username")]
    pub(crate) password: Option<String>,
    /// Lifetime of issued access tokens, in seconds. Default: 300.
    #[arg(long, value_name = "SECS")]
    pub(crate) token_ttl: Option<u64>,
    /// Probability (0 to 1) of answering a request with 503.
    #[arg(long = "fault-5xx", value_name = "P", default_value_t = 0.0)]
    pub(crate) fault_5xx: f64,
    /// Probability (0 to 1) of dropping a connection without an answer.
    #[arg(long, value_name = "P", default_value_t = 0.0)]
    pub(crate) fault_reset: f64,
    /// Probability (0 to 1) of answering 429 with Retry-After.
    #[arg(long = "fault-429", value_name = "P", default_value_t = 0.0)]
    pub(crate) fault_429: f64,
    /// Latency added to every request, in milliseconds.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub(crate) latency_ms: u64,
    /// Requests per minute and vault before 429 (VGS's documented limit); `none`
    /// lifts the limit, e.g. for `vaultctl bench --endpoint`.
    #[arg(long, value_name = "N|none", default_value = "3000")]
    pub(crate) rate_limit: RateLimit,
    /// The vaults' fingerprinting: `on`, the same value gets the same alias again;
    /// `off`, every insert stores a new record (a per-vault VGS setting).
    #[arg(long, value_name = "on|off", default_value = "on")]
    pub(crate) fingerprinting: OnOff,
    /// Whether the vaults reveal values: `off` answers reveals with 403, as a VGS vault
    /// whose reveal was never enabled does.
    #[arg(long, value_name = "on|off", default_value = "on")]
    pub(crate) reveal: OnOff,
    /// A VGS route file (YAML or JSON, as `vgs get routes` prints it) for the first
    /// vault: the mock then also runs VGS's outbound and inbound proxies, and says
    /// where after the first line.
    #[arg(long, value_name = "FILE")]
    pub(crate) routes: Option<std::path::PathBuf>,
    /// Store test cards in the first vault as Hyperswitch's VGS connector (single- and
    /// multi-token) and VGS Collect would have, and write their ids to FILE, one JSON
    /// line each, ready for `vaultctl migrate FILE`.
    #[arg(long, value_name = "FILE")]
    pub(crate) seed_hyperswitch: Option<std::path::PathBuf>,
}

/// A setting given as `on` or `off`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct OnOff(pub(crate) bool);

impl std::str::FromStr for OnOff {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text.trim().to_ascii_lowercase().as_str() {
            "on" | "true" | "yes" => Ok(OnOff(true)),
            "off" | "false" | "no" => Ok(OnOff(false)),
            other => Err(format!("`{other}` is neither on nor off: give on or off")),
        }
    }
}

impl std::fmt::Display for OnOff {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0 { "on" } else { "off" })
    }
}

/// `--rate-limit`: requests per minute and vault, or none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RateLimit(pub(crate) Option<u32>);

impl std::str::FromStr for RateLimit {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text.trim() {
            "none" | "off" | "unlimited" => Ok(RateLimit(None)),
            number => match number.parse::<u32>() {
                Ok(0) | Err(_) => Err(format!(
                    "`{number}` is not a rate limit: give requests per minute (at least 1) or `none`"
                )),
                Ok(limit) => Ok(RateLimit(Some(limit))),
            },
        }
    }
}

/// Where the vault credentials come from, for commands that talk to a vault.
#[derive(Debug, Args)]
pub(crate) struct VaultArgs {
    /// Read the vault settings from this TOML file (keys: client_id, client_secret,
    /// vault_id, environment, endpoint, api, fingerprinting); missing keys come from
    /// VGS_*.
    #[arg(long, value_name = "FILE")]
    pub(crate) config: Option<PathBuf>,
    /// Which VGS API to speak: v2 (default), v1, or cmp (the Card Management
    /// Platform); overrides VGS_API and the config file's `api`.
    #[arg(long, value_name = "v2|v1|cmp")]
    pub(crate) api: Option<String>,
    /// Share access tokens with other processes through this Redis
    /// (`redis://host:6379/0`, `rediss://…`); default VAULTLINK_TOKEN_STORE, else
    /// tokens stay in this process. If Redis is unreachable, vaultctl warns once and
    /// fetches its own token.
    #[arg(long, value_name = "URL")]
    pub(crate) token_store: Option<String>,
}

/// `vaultctl insert`.
#[derive(Debug, Args)]
pub(crate) struct InsertArgs {
    /// Print the aliases as one JSON document (the input of `retrieve --id`).
    #[arg(long)]
    pub(crate) json: bool,
    /// The vault.
    #[command(flatten)]
    pub(crate) vault: VaultArgs,
}

const RETRIEVE_ABOUT: &str = "\
Turn a card's aliases back into the card. Give the aliases either as the JSON that
`vaultctl insert --json` printed (or one line of `vaultctl import`'s output) with
--id FILE (- for stdin), or as FIELD=ALIAS arguments naming which field each alias
stores:
  vaultctl retrieve card_number=4111… card_exp_month=tok_… card_exp_year=tok_… [card_cvc=tok_…] [card_holder_name=tok_…]
(short names: number, month, year, cvc, holder; id=ALIAS for a record stored whole,
in single-id mode, and id=CRD… for a card of the Card Management Platform with
--api cmp, whose service accounts without cards:read-pci get the card's aliases, BIN,
last four, expiry and CVC status instead of the card).

Bare aliases (`vaultctl retrieve ALIAS…`, for a lookup during an incident) reveal one
value each, from persistent storage or else volatile: their field is unknown, so a
value of 12 or more digits shows only its last four and anything else only its length,
unless --reveal.

The card is printed masked (last four digits of the number, the expiry; no CVC, no
holder name) unless --reveal is given. --reveal --json prints card JSON that
`vaultctl insert` accepts. A CVC is kept volatile by the vault (one hour): after that
the card comes back without it.";

/// `vaultctl retrieve`.
#[derive(Debug, Args)]
#[command(group(ArgGroup::new("which").required(true).args(["aliases", "id"])))]
pub(crate) struct RetrieveArgs {
    /// The card's aliases as FIELD=ALIAS, or bare aliases to reveal one by one (see
    /// above).
    #[arg(value_name = "FIELD=ALIAS|ALIAS")]
    pub(crate) aliases: Vec<String>,
    /// The card's aliases as JSON: the output of `insert --json` or one line of
    /// `import`'s output; `-` reads stdin.
    #[arg(long, value_name = "FILE|-", conflicts_with = "aliases")]
    pub(crate) id: Option<String>,
    /// Print the card number, CVC and holder name in clear.
    #[arg(long)]
    pub(crate) reveal: bool,
    /// Print the card as one JSON document (Hyperswitch's card field names).
    #[arg(long)]
    pub(crate) json: bool,
    /// The card's expiry, for an id without aliases for it (a card collected by VGS
    /// Collect: number and CVC only).
    #[arg(long, value_name = "MM/YYYY")]
    pub(crate) expiry: Option<String>,
    /// The vault.
    #[command(flatten)]
    pub(crate) vault: VaultArgs,
}

const DELETE_ABOUT: &str = "\
Delete a card's own records from the vault. The aliases are given as for `retrieve`:
--id FILE|- with the JSON of `insert --json`, or FIELD=ALIAS arguments.

A delete never breaks another stored card. With the vault's fingerprinting on (the
default; VGS_FINGERPRINTING or `fingerprinting` in --config says which), the vault keeps
one record per value: two cards with the same holder name, the same card number (one
card saved by two customers), the same CVC or the same expiry share records, and
nothing tells who else holds one. So per-field records are kept, each listed with why;
a single-id record is removed when it carries vaultlink's per-card marker. With
fingerprinting off every record is the card's own and all are removed. To remove a
value from the vault everywhere, use `vaultctl erase`. Records already gone are listed
as such.";

const ERASE_ABOUT: &str = "\
Erase a card's values from the vault as far as the vault lets anyone reach them. Every
record of each named field's value this card leads to is removed, with every alias it
has. With fingerprinting on (one record per value), that is EVERY stored card holding an
equal value: they lose it too. With fingerprinting off, or for a single-id record, other
cards' equal values are records of their own that no VGS API finds by value: they stay,
and the output says so. Use it for a right-to-erasure request for a card number or a
holder name, not to forget one customer's card (that is `vaultctl delete`).

The aliases are given as for `retrieve`. --fields names what to erase (default
card_number,card_cvc,card_holder_name: the cardholder data; expiry on its own
identifies nobody). It needs reveal on the vault, to find every alias of a value, and
--yes, to confirm.";

/// `vaultctl delete`.
#[derive(Debug, Args)]
#[command(group(ArgGroup::new("which").required(true).args(["aliases", "id"])))]
pub(crate) struct DeleteArgs {
    /// The card's aliases as FIELD=ALIAS (see `vaultctl retrieve --help`).
    #[arg(value_name = "FIELD=ALIAS")]
    pub(crate) aliases: Vec<String>,
    /// The card's aliases as JSON (the output of `insert --json`); `-` reads stdin.
    #[arg(long, value_name = "FILE|-", conflicts_with = "aliases")]
    pub(crate) id: Option<String>,
    /// Print the result as one JSON document.
    #[arg(long)]
    pub(crate) json: bool,
    /// The vault.
    #[command(flatten)]
    pub(crate) vault: VaultArgs,
}

/// `vaultctl erase`.
#[derive(Debug, Args)]
#[command(group(ArgGroup::new("which").required(true).args(["aliases", "id"])))]
pub(crate) struct EraseArgs {
    /// The card's aliases as FIELD=ALIAS (see `vaultctl retrieve --help`).
    #[arg(value_name = "FIELD=ALIAS")]
    pub(crate) aliases: Vec<String>,
    /// The card's aliases as JSON (the output of `insert --json`); `-` reads stdin.
    #[arg(long, value_name = "FILE|-", conflicts_with = "aliases")]
    pub(crate) id: Option<String>,
    /// The fields whose values are erased, comma separated.
    #[arg(
        long,
        value_name = "FIELD,…",
        value_delimiter = ',',
        default_value = "card_number,card_cvc,card_holder_name"
    )]
    pub(crate) fields: Vec<String>,
    /// Confirms that every stored card holding these values loses them.
    #[arg(long)]
    pub(crate) yes: bool,
    /// Print the result as one JSON document.
    #[arg(long)]
    pub(crate) json: bool,
    /// The vault.
    #[command(flatten)]
    pub(crate) vault: VaultArgs,
}

/// `vaultctl check`.
#[derive(Debug, Args)]
pub(crate) struct CheckArgs {
    /// Print the findings as one JSON document.
    #[arg(long)]
    pub(crate) json: bool,
    /// The vault.
    #[command(flatten)]
    pub(crate) vault: VaultArgs,
}

const FORWARD_ABOUT: &str = "\
Pay with a stored card without holding it: send a processor request through the
vault's outbound proxy. The body template is read from stdin (empty: no body) and names
card fields the way Hyperswitch does:
  {\"card\": {\"number\": \"{{$card_number}}\", \"cvc\": \"{{$card_cvc}}\",
            \"exp_month\": \"{{$card_exp_month}}\", \"exp_year\": \"{{$card_exp_year}}\"}}
({{$card_holder_name}} too). vaultctl fills them with the card's ALIASES from --id (the
JSON `vaultctl insert --json` printed; a CMP card id needs VGS_CLIENT_* of a CMP service
account, whose cards:read scope shows the card's aliases); the proxy's REVEAL routes swap
them for the card on the way to the processor. A placeholder that is unknown, or names
a field the card does not have, fails before anything is sent.

The body is JSON unless a `--header 'Content-Type: application/x-www-form-urlencoded'`
says form (aliases are then percent-encoded). The processor's answer is printed as
`HTTP STATUS`, its headers, a blank line and its body (--json: one document), whatever
its status: exit 0 means the processor answered. A failure of the proxy itself (its
credentials: 407, no route for the processor's host, its rate limit, its own errors) is
exit 1 with the cause and the fix. A POST is not sent twice once it may have reached
the processor.";

const PROXY_HELP: &str = "\
The proxy comes from the environment or the --config TOML file, never from a flag:
  VGS_PROXY_URL       the outbound proxy, https://tnt….sandbox.verygoodproxy.com:8443
                      (or http to loopback: the `outbound proxy:` line of `vaultctl mock
                      serve --routes`); credentials in it are used and then removed.
                      Default: from VGS_VAULT_ID and VGS_ENVIRONMENT.
  VGS_PROXY_USERNAME  the vault's access credentials (HTTP proxy authentication)
  VGS_PROXY_PASSWORD
  VGS_PROXY_CA        the proxy's CA certificate (the file VGS gives, e.g. sandbox.pem):
                      a path, or the PEM itself, or base64 of it. Needed for https
                      processors; it is then the only root trusted (pinned).
--config keys: proxy_url, proxy_username, proxy_password, proxy_ca (and, for CMP cards,
client_id, client_secret, vault_id, environment or endpoint).
Nothing secret (the card, the access password, a header value) is printed or logged at
any level; the processor's answer is printed as the proxy returned it.";

/// `vaultctl forward`.
#[derive(Debug, Args)]
pub(crate) struct ForwardArgs {
    /// The card's aliases as JSON: the output of `insert --json` or one line of
    /// `import`'s output (stdin carries the body template).
    #[arg(long, value_name = "FILE")]
    pub(crate) id: String,
    /// The processor's URL (https; plain http only to loopback).
    #[arg(long, value_name = "URL")]
    pub(crate) url: String,
    /// The HTTP method.
    #[arg(long, value_name = "M", default_value = "POST")]
    pub(crate) method: String,
    /// A header for the processor, `Name: value` (repeatable).
    #[arg(long = "header", short = 'H', value_name = "'K: V'")]
    pub(crate) headers: Vec<String>,
    /// Print the processor's answer as one JSON document.
    #[arg(long)]
    pub(crate) json: bool,
    /// Read the proxy (and, for CMP cards, the vault) settings from this TOML file.
    #[arg(long, value_name = "FILE")]
    pub(crate) config: Option<PathBuf>,
}

const IMPORT_ABOUT: &str = "\
Bulk migration: stream the cards of FILE (one card JSON object a line) into the vault
through batched inserts, and append one line per stored card to --out:
  {\"line\":N,\"card_number_last4\":\"1111\",\"aliases\":{…as insert --json…}}
Memory stays flat whatever the file size. A bad line (invalid JSON, a card that fails
validation, a value the vault refused) is reported on stderr with its line number and
skipped; --strict stops at the first one instead. What was stored is always in --out,
flushed after every batch. --resume skips the lines --out already lists (run again
after an interruption or to retry failed lines). Cards refused for a passing reason
(the vault's rate limit, a 5xx, a dropped connection) are sent again after the vault's
Retry-After or a backoff, so a large import paces itself to the vault's limit.
Credentials, vault id or scope that do not work stop the run at once: every line
would fail the same way.
A progress bar on a terminal, a plain progress line every few seconds otherwise, and a
summary at the end (stored, failed, token fetches, elapsed). Exit code 3 when the run
finished but some lines failed.";

/// `vaultctl migrate`.
#[derive(Debug, Args)]
pub(crate) struct MigrateArgs {
    /// The payment methods to migrate: JSON lines (see above).
    #[arg(value_name = "FILE.jsonl")]
    pub(crate) file: PathBuf,
    /// Migrate (without it: a dry run that changes nothing).
    #[arg(long)]
    pub(crate) apply: bool,
    /// Where --apply appends each line's outcome, and what every later run (a dry run
    /// too) reads to skip what is done (default: FILE.report.jsonl).
    #[arg(long, value_name = "report.jsonl")]
    pub(crate) report: Option<PathBuf>,
    /// Leave the old records in place (a later run without it removes them).
    #[arg(long)]
    pub(crate) keep_old: bool,
    /// FILE lists every payment method that may share an old single-token record (the
    /// whole table): with fingerprinting on, such records are then removed too.
    #[arg(long)]
    pub(crate) every_holder_listed: bool,
    /// Cards migrated at once.
    #[arg(long, value_name = "N", default_value_t = 8,
          value_parser = clap::value_parser!(u32).range(1..=256))]
    pub(crate) concurrency: u32,
    /// Print the summary as one JSON document.
    #[arg(long)]
    pub(crate) json: bool,
    /// The vault.
    #[command(flatten)]
    pub(crate) vault: VaultArgs,
}

/// `vaultctl import`.
#[derive(Debug, Args)]
pub(crate) struct ImportArgs {
    /// The cards: JSON lines, one card object a line (blank lines are skipped).
    #[arg(value_name = "FILE.jsonl")]
    pub(crate) file: PathBuf,
    /// Where to append the aliases of stored cards (JSON lines).
    #[arg(long, value_name = "aliases.jsonl")]
    pub(crate) out: PathBuf,
    /// Continue an earlier run: skip the lines already listed in --out, append the rest.
    #[arg(long)]
    pub(crate) resume: bool,
    /// Stop at the first bad line (after saving what was stored).
    #[arg(long)]
    pub(crate) strict: bool,
    /// Cards per batched insert call (the connector packs 20 values a request).
    #[arg(long, value_name = "N", default_value_t = 500,
          value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub(crate) batch: u32,
    /// Print the summary as one JSON document.
    #[arg(long)]
    pub(crate) json: bool,
    /// The vault.
    #[command(flatten)]
    pub(crate) vault: VaultArgs,
}

const MIGRATE_ABOUT: &str = "\
Re-store payment methods already in the vault in vaultlink's layout. FILE has one line
per payment method, as the orchestrator kept it:
  {\"connector_vault_id\": ID, \"ref\": \"pm_123\", \"expiry\": \"04/2030\"}
or the ID itself (with \"ref\" and \"expiry\" beside its keys), where ID is what
Hyperswitch's VGS connector returned ({\"SingleVaultId\": \"tok_…\"} for its single-token
mode, {\"MultiVauldIds\": {\"Card\": …}} or {\"MultiVauldIds\": {\"NetworkToken\": …}} for
multi-token), VGS Collect's aliases ({\"card_number\": ALIAS, \"card_cvc\": ALIAS}, with
\"expiry\": Collect stores number and CVC only), or a vaultlink id (left as it is). \"ref\"
is your own key, echoed in the report.

Without --apply (a dry run) every old record is read and checked, nothing is written
to the vault or the report, and the lines go to stdout (what the report says is done
is skipped). With --apply, per
payment method: the old record is read; it is stored again in vaultlink's layout (one
record per field; the CVC and a cryptogram volatile, never persisted, unlike
Hyperswitch's single-token record); the new records are read back and compared; a
\"stored\" line with the new id goes to the report; then the old records are removed,
sparing any the new id reads through (with fingerprinting an equal value is one
record: a Collect card number, a CVC), and the new id is read once more (\"migrated\").
Per-field old records go through delete, which keeps records other cards may share by
value (Hyperswitch's multi-token records are volatile and go within the hour anyway). A
Hyperswitch single-token record holds the card with its CVC; with fingerprinting on,
payment methods with the same card data share it, so it is removed (with every alias of
it) only with --every-holder-listed, when FILE lists every payment method (the whole
table; a later run with it removes the records earlier runs kept); otherwise it is kept
and the line says why. With fingerprinting off (VGS_FINGERPRINTING=off) it is the card's
own and always removed. Before removing anything, --apply probes the vault's
fingerprinting and stops if it is not what the configuration says. Lines whose old ids
share an alias are one group: all are stored again before any old record of the group
goes, and none goes that a new id reads through.

The report (--report, default FILE.report.jsonl; keep it, and pass the same one to
every run: it holds the new ids) gets a \"stored\" line with the new connector_vault_id
(compact form, vl1;…) as soon as a card is stored again (made durable before anything
old goes), then its final line (\"migrated\" with the fingerprint and what happened to
the old records, or \"failed\" and why); a bad input line gets its \"failed\" line. A
second run skips every old id the report says is migrated, and finishes those it says
are stored, whatever the order or the lines of FILE now; with --keep-old no longer
given, it removes the old records earlier runs kept. Fields the old record had already
lost are listed in \"missing\" on the line. A Hyperswitch multi-token card can only be
migrated within the hour it was stored: after that VGS has dropped it.

Exit code 3 when some lines failed (the report says why, per line).";

const BENCH_ABOUT: &str = "\
Benchmarks vaultlink against the mock VGS on loopback and prints a table (--json: one
JSON document).

--latency-ms N shapes the runs like a network: the embedded mock waits N ms before
every answer, and each flow reports its round trips per operation (p50 / N) for both
sides; the baseline sends a flow's independent requests at once (as the connector
does), so the ratio compares like with like.

Default mode: starts the embedded mock (in this process, rate limit lifted), warms up,
then for each --flow and --concurrency runs --requests operations twice on each side,
in --slices short slices interleaved connector, baseline, baseline, connector, ...:
  connector  the VGS connector as an orchestrator holds it (Arc<dyn ExternalVault>):
             token cache, retries, error mapping, response parsing and validation
  baseline   the same HTTP requests (same bodies, serialised per call; same number,
             same order) made with a bare reqwest::Client and a token fetched
             beforehand; it reads each answer's bytes but decodes nothing: the floor
ratio = connector throughput / baseline throughput. token_fetches counts the token
requests the mock saw during a flow's connector runs (a fresh connector per flow and
concurrency: one fetch per token lifetime, whatever the concurrency). Then
--cold-callers tasks call a fresh connector at once: they share one token fetch.

--token-ttl SECS makes the mock issue short-lived tokens, so that tokens are refreshed
ahead of expiry during the runs; each run then reports the fetches expected for the
time it spans and the requests the mock rejected for an expired token (should be 0).

--import CARDS: bulk migration instead. Generates CARDS test cards (4 values each)
and stores them through insert_many in batches of --import-batch, against the mock
in a child process (so this process's peak RSS is the importer's alone); reports
cards/s, the create requests the mock saw (exactly ceil(values / 20)) and peak RSS.

--endpoint URL uses a mock started with `vaultctl mock serve --rate-limit none`
instead, with the VGS_* credentials from the environment (VGS_API=v1 for API v1).
Timings are not asserted anywhere: rerun on your machine and compare.";

/// A benchmark flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum BenchFlow {
    /// Per-field insert of a test card: one `POST /aliases` of 5 values.
    Insert,
    /// Retrieve of that card by its aliases: a multi-reveal of the persistent fields
    /// and a read of the volatile CVC, sent at once.
    Retrieve,
}

impl BenchFlow {
    /// The flow's name in output.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            BenchFlow::Insert => "insert",
            BenchFlow::Retrieve => "retrieve",
        }
    }
}

/// `vaultctl bench`.
#[derive(Debug, Args)]
pub(crate) struct BenchArgs {
    /// Concurrency levels: how many tasks call at once, comma-separated.
    #[arg(long, value_name = "N,…", value_delimiter = ',', default_value = "1,64",
          value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub(crate) concurrency: Vec<u32>,
    /// Flows to run, comma-separated.
    #[arg(
        long,
        value_name = "FLOW,…",
        value_delimiter = ',',
        default_value = "insert,retrieve"
    )]
    pub(crate) flow: Vec<BenchFlow>,
    /// Operations per run; each side (connector, baseline) runs twice per flow and
    /// concurrency, in --slices interleaved slices. Default 40,000 (a few seconds per
    /// run on a small machine), 400 with --latency-ms.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub(crate) requests: Option<u64>,
    /// Network-shaped runs: the embedded mock adds N milliseconds to every request
    /// (a VGS round trip), and the table reports each flow's round trips per
    /// operation (p50 / N) beside the baseline's.
    #[arg(long, value_name = "N", conflicts_with_all = ["endpoint", "import"],
          value_parser = clap::value_parser!(u64).range(1..=10_000))]
    pub(crate) latency_ms: Option<u64>,
    /// Token lifetime of the embedded mock, in seconds (default 300, VGS's): a short
    /// one makes tokens refresh during the runs.
    #[arg(long, value_name = "SECS", conflicts_with = "endpoint",
          value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub(crate) token_ttl: Option<u64>,
    /// Callers started at once on a fresh connector, after the runs (0: skip).
    #[arg(long, value_name = "N", default_value_t = 1_000,
          value_parser = clap::value_parser!(u32).range(0..=10_000))]
    pub(crate) cold_callers: u32,
    /// Bulk-import mode: store this many generated cards through insert_many.
    #[arg(long, value_name = "CARDS", value_parser = clap::value_parser!(u64).range(1..))]
    pub(crate) import: Option<u64>,
    /// Cards per insert_many call in --import mode; a multiple of 5, so that every
    /// request carries 20 values.
    #[arg(long, value_name = "N", default_value_t = 500,
          value_parser = clap::value_parser!(u32).range(5..=100_000))]
    pub(crate) import_batch: u32,
    /// Benchmark against this mock (`vaultctl mock serve --rate-limit none`) instead of
    /// the embedded one; credentials from VGS_CLIENT_ID, VGS_CLIENT_SECRET,
    /// VGS_VAULT_ID (and VGS_API).
    #[arg(long, value_name = "URL")]
    pub(crate) endpoint: Option<String>,
    /// Slices per side: each side's 2 × N operations run in this many interleaved
    /// slices (connector, baseline, baseline, connector, repeated); more, shorter
    /// slices spread bursts of machine noise evenly over both sides. Rounded down to
    /// an even number. Default 80; 4 with --latency-ms (each slice then holds enough
    /// operations to keep every concurrent caller busy).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(2..=10_000))]
    pub(crate) slices: Option<u32>,
    /// Calibration: run the baseline against itself (an A/A test) in place of the
    /// connector; how far its ratios stray from 1 is the method's noise here.
    #[arg(long, conflicts_with = "import")]
    pub(crate) aa: bool,
    /// Print one JSON document instead of the table.
    #[arg(long)]
    pub(crate) json: bool,
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn retrieve_needs_aliases_or_an_id_but_not_both() {
        assert!(Cli::try_parse_from(["vaultctl", "retrieve"]).is_err());
        assert!(Cli::try_parse_from(["vaultctl", "retrieve", "--id", "-", "number=x"]).is_err());
        assert!(Cli::try_parse_from(["vaultctl", "retrieve", "--id", "-"]).is_ok());
    }

    #[test]
    fn mock_credentials_come_in_pairs() {
        assert!(Cli::try_parse_from(["vaultctl", "mock", "serve", "--client-id", "x"]).is_err());
        let cli = Cli::try_parse_from([
            "vaultctl",
            "mock",
            "serve",
            "--addr",
            "127.0.0.1:0",
            "--vault-id",
            "tnta1",
            "--vault-id",
            "tntb2",
        ])
        .expect("parses");
        let Command::Mock(MockCommand::Serve(args)) = cli.command else {
            panic!("mock serve");
        };
        assert_eq!(args.vault_ids, ["tnta1", "tntb2"]);
        assert_eq!(args.addr.port(), 0);
    }
}
