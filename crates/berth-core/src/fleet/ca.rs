//! Berth's certificate authority, which signs every instance's server certificate. Created once
//! and kept in the store with its private key sealed under the master key, so every replica
//! issues certificates clients can verify with the same `ca.pem`.

use berth_auth::seal::MasterKey;
use berth_store::PgPool;
use berth_tls::CertificateAuthority;
use uuid::Uuid;

use crate::AppError;

pub(crate) async fn load_or_create(
    db: &PgPool,
    master: &MasterKey,
) -> Result<CertificateAuthority, AppError> {
    let mut tx = db.begin().await?;
    berth_store::fleet::authorities::lock_table(&mut *tx).await?;
    let (id, cert_pem, sealed) = match berth_store::fleet::authorities::current(&mut *tx).await? {
        Some(existing) => existing,
        None => {
            let ca = CertificateAuthority::generate("Berth instance CA")
                .map_err(|e| AppError::Internal(e.to_string()))?;
            let id = Uuid::now_v7();
            let sealed = master.seal(ca.key_pkcs8_der(), id.as_bytes());
            berth_store::fleet::authorities::insert(&mut *tx, id, ca.cert_pem(), &sealed).await?;
            (id, ca.cert_pem().to_owned(), sealed)
        }
    };
    tx.commit().await?;
    let key = master
        .open(&sealed, id.as_bytes())
        .map_err(|_| AppError::Internal("the CA key cannot be unsealed: this server has a different master key (set BERTH_MASTER_KEY)".into()))?;
    CertificateAuthority::from_parts(&cert_pem, &key).map_err(|e| AppError::Internal(e.to_string()))
}
