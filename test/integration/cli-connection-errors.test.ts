import { withDatabase } from '../../src/connection/database-url';
import { runCli } from '../helpers/cli';

/** A wrong DATABASE_URL is the operator's to fix: say what is wrong, no stack trace, no secret. */
describe('the CLI with a DATABASE_URL that does not work', () => {
  const stackFrame = /^\s+at /m;

  it('names a database that does not exist and how to create it', async () => {
    const url = withDatabase(
      process.env.PIXCRAWLER_TEST_SERVER_URL!,
      'pixcrawler_no_such_database',
    );
    const { code, output } = await runCli(['status'], url);
    expect(code).toBe(3);
    expect(output).toMatch(/that database does not exist\. Create it \(createdb\)/);
    expect(output).not.toMatch(stackFrame);
  });

  it('says nothing listens at a closed port, with the password masked', async () => {
    const { code, output } = await runCli(['migrate'], 'postgresql://app:s3cret@127.0.0.1:1/x');
    expect(code).toBe(3);
    expect(output).toContain('Cannot connect to postgresql://app:***@127.0.0.1:1/x');
    expect(output).toContain('Is PostgreSQL running there?');
    expect(output).not.toContain('s3cret');
    expect(output).not.toMatch(stackFrame);
  });

  it.each([[['status']], [['status', '--json']]])(
    '%p refuses a password with an unencoded "@" and "/" without a lookup or a connection',
    async (args) => {
      // Reports every socket the CLI opens (a DNS lookup of a host name comes with one).
      const probe =
        'import net from "node:net"; const connect = net.Socket.prototype.connect;' +
        'net.Socket.prototype.connect = function (...a) {' +
        ' process.stderr.write("socket connect attempted\\n"); return connect.apply(this, a); };';
      const { code, output } = await runCli(args, 'postgresql://u:x@S3cr3t/y@127.0.0.1:5432/db', {
        NODE_OPTIONS: [
          process.env.NODE_OPTIONS,
          `--import=data:text/javascript,${encodeURIComponent(probe)}`,
        ]
          .filter(Boolean)
          .join(' '),
      });
      expect(code).toBe(3);
      expect(output).toContain(
        'DATABASE_URL (postgresql://***@127.0.0.1:5432/db) has an "@" after its host',
      );
      expect(output).toContain('@ as %40, / as %2F');
      expect(output).not.toContain('S3cr3t');
      expect(output).not.toContain('x@');
      expect(output).not.toContain('socket connect attempted');
      expect(output).not.toContain('does not resolve');
      expect(output).not.toMatch(stackFrame);
    },
  );

  it('refuses a URL of another database kind with the expected shape', async () => {
    const { code, output } = await runCli(['verify'], 'mysql://app:s3cret@db/x');
    expect(code).toBe(3);
    expect(output).toContain('DATABASE_URL must start with postgresql://');
    expect(output).not.toContain('s3cret');
    expect(output).not.toMatch(stackFrame);
  });
});
