//! The TCP ports of instances and spares. A transaction that needs one claims it with a lock of
//! its own on that port (`pg_try_advisory_xact_lock`), skipping ports other transactions are
//! claiming rather than waiting for them, so concurrent creates never queue behind each other's
//! commits; after the lock it checks that nobody committed the port meanwhile.

use sqlx::PgConnection;

/// The advisory-lock space of ports (the second key is the port).
const LOCK_SPACE: i32 = 7_460_912;

/// Up to `n` ports of `[low, high]`, lowest first, that no instance or spare has, minus `skip`.
pub async fn candidates(
    db: &mut PgConnection,
    (low, high): (i32, i32),
    skip: &[i32],
    n: i64,
) -> Result<Vec<i32>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT p FROM generate_series($1::int, $2::int) p
         WHERE NOT EXISTS (SELECT 1 FROM instances i WHERE i.port = p)
           AND NOT EXISTS (SELECT 1 FROM spares s WHERE s.port = p)
           AND p <> ALL($3)
         ORDER BY p LIMIT $4",
    )
    .bind(low)
    .bind(high)
    .bind(skip)
    .bind(n)
    .fetch_all(db)
    .await
}

/// Claims `port` for the rest of the transaction, unless another transaction is claiming it,
/// and then says whether it is still free (no instance or spare committed it meanwhile).
pub async fn try_claim(db: &mut PgConnection, port: i32) -> Result<bool, sqlx::Error> {
    let locked: bool = sqlx::query_scalar("SELECT pg_try_advisory_xact_lock($1, $2)")
        .bind(LOCK_SPACE)
        .bind(port)
        .fetch_one(&mut *db)
        .await?;
    if !locked {
        return Ok(false);
    }
    // A statement of its own: its snapshot sees whatever the lock's last holder committed.
    sqlx::query_scalar(
        "SELECT NOT EXISTS (SELECT 1 FROM instances WHERE port = $1)
            AND NOT EXISTS (SELECT 1 FROM spares WHERE port = $1)",
    )
    .bind(port)
    .fetch_one(db)
    .await
}
