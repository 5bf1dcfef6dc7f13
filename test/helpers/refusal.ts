import { MigrationRefusedError } from '../../src/migrator/migration-refused-error';
import { refusalMessage } from '../../src/cli/reports/refusals';

/**
 * Awaits a migrator call that must refuse: returns the refusal, and the words the CLI prints for
 * it, so a test checks both the typed reason and what the operator is told.
 */
export async function refusalOf(
  call: Promise<unknown>,
): Promise<{ error: MigrationRefusedError; message: string }> {
  const error = await call.then(
    () => {
      throw new Error('expected the migrator to refuse, but it succeeded');
    },
    (thrown: unknown) => thrown,
  );
  if (!(error instanceof MigrationRefusedError)) throw error;
  return { error, message: refusalMessage(error.refusal) };
}
