/**
 * Multi-row inserts: one statement per `ROWS_PER_STATEMENT` rows instead of one per row, which is what makes an
 * import over a network connection (PostgreSQL) take round trips per repository rather than per tag.
 */
type SqlValue = string | number | null;
interface SqlConn {
  run(sql: string, params?: SqlValue[]): Promise<number>;
}

const ROWS_PER_STATEMENT = 500;

export async function insertRows(
  c: SqlConn,
  table: string,
  columns: readonly string[],
  rows: readonly SqlValue[][],
  onConflict = '',
): Promise<void> {
  const one = `(${columns.map(() => '?').join(', ')})`;
  for (let i = 0; i < rows.length; i += ROWS_PER_STATEMENT) {
    const chunk = rows.slice(i, i + ROWS_PER_STATEMENT);
    await c.run(
      `INSERT INTO ${table} (${columns.join(', ')}) VALUES ${chunk.map(() => one).join(', ')}${onConflict}`,
      chunk.flat(),
    );
  }
}
