#!/usr/bin/env node
import { Command } from 'commander';
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

/** `pixcrawler-db`: migrate, inspect and verify a PixCrawler database. */
export function buildProgram(): Command {
  const program = new Command('pixcrawler-db')
    .description(
      'Migrate, inspect and verify a PixCrawler PostgreSQL database.\n' +
        'Uses DATABASE_URL when set; otherwise an embedded PostgreSQL whose data lives in ./.pixcrawler.',
    )
    .showHelpAfterError()
    .configureHelp({ sortSubcommands: false });
  registerMigrate(program);
  registerPlan(program);
  registerRevert(program);
  registerStatus(program);
  registerVerify(program);
  registerStats(program);
  registerPreflight(program);
  registerSeedLegacy(program);
  registerDemo(program);
  return program;
}

/** The CLI as a process runs it: interrupts handled, exit code set. */
export function runCli(argv: string[] = process.argv): Promise<void> {
  handleInterrupts();
  return buildProgram()
    .parseAsync(argv)
    .then(
      () => undefined,
      (error: unknown) => {
        console.error(error);
        process.exitCode = 1;
      },
    );
}

if (require.main === module) void runCli();
