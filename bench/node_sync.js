// The peer of bench/full_sync.sh: the simplest full sync a user writes from the Typesense guide,
// with the `pg` and `typesense` npm clients (tests/node/package.json). Keyset pages of 5,000 rows
// ordered by (updated_at, id), the demo's transforms done by hand, one import with
// action=upsert per page. Run by full_sync.sh; on its own:
//
//   NODE_PATH=tests/node/node_modules node bench/node_sync.js \
//     postgresql://postgres@127.0.0.1:5432/postgres http://127.0.0.1:8108 API_KEY products_node
//
// Creates the collection, reads every row, prints `imported=<n> failed=<n>` and exits 1 when a
// document failed.
const { Client } = require("pg");
const Typesense = require("typesense");

const [dsn, typesenseUrl, apiKey, collection] = process.argv.slice(2);
const PAGE_SIZE = 5000;

async function main() {
  const url = new URL(typesenseUrl);
  const typesense = new Typesense.Client({
    nodes: [{ host: url.hostname, port: Number(url.port), protocol: url.protocol.slice(0, -1) }],
    apiKey,
    connectionTimeoutSeconds: 60,
  });
  await typesense.collections().create({
    name: collection,
    fields: [
      { name: "name", type: "string" },
      { name: "price", type: "float" },
      { name: "tags", type: "string[]", facet: true },
      { name: "popularity", type: "int32" },
    ],
    default_sorting_field: "popularity",
  });

  const db = new Client({ connectionString: dsn });
  await db.connect();
  // The cursor's timestamp travels as text: a JavaScript Date keeps milliseconds only, and
  // updated_at has microseconds.
  const page = `SELECT *, updated_at::text AS cursor_at FROM products
    WHERE (updated_at, id) > ($1::timestamptz, $2) ORDER BY updated_at, id LIMIT ${PAGE_SIZE}`;
  let cursor = ["-infinity", ""];
  let imported = 0;
  let failed = 0;
  for (;;) {
    const { rows } = await db.query(page, cursor);
    if (rows.length === 0) break;
    const last = rows[rows.length - 1];
    cursor = [last.cursor_at, last.id];
    const documents = rows
      .filter((row) => !row.is_deleted)
      .map((row) => ({
        id: row.id,
        name: row.product_name,
        price: parseFloat(row.price),
        tags: row.tags,
        popularity: row.popularity,
      }));
    if (documents.length === 0) continue;
    try {
      await typesense.collections(collection).documents().import(documents, { action: "upsert" });
      imported += documents.length;
    } catch (error) {
      // An ImportError carries the per-line results.
      const results = error.importResults || [];
      const failures = results.filter((result) => !result.success).length;
      if (results.length === 0) throw error;
      imported += results.length - failures;
      failed += failures;
    }
  }
  await db.end();
  console.log(`imported=${imported} failed=${failed}`);
  if (failed > 0) process.exit(1);
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
