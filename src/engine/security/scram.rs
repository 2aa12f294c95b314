//! SCRAM-SHA-256 / SCRAM-SHA-512 client (RFC 5802, RFC 7677) over the
//! RustCrypto hmac, sha2 and pbkdf2 crates. Sans-I/O: the caller carries the
//! messages in SaslAuthenticate requests.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256, Sha512};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Hash {
    Sha256,
    Sha512,
}

impl Hash {
    fn hmac(self, key: &[u8], data: &[u8]) -> Vec<u8> {
        match self {
            Hash::Sha256 => {
                let mut m = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key length");
                m.update(data);
                m.finalize().into_bytes().to_vec()
            }
            Hash::Sha512 => {
                let mut m = Hmac::<Sha512>::new_from_slice(key).expect("HMAC takes any key length");
                m.update(data);
                m.finalize().into_bytes().to_vec()
            }
        }
    }

    fn hash(self, data: &[u8]) -> Vec<u8> {
        match self {
            Hash::Sha256 => Sha256::digest(data).to_vec(),
            Hash::Sha512 => Sha512::digest(data).to_vec(),
        }
    }

    fn salted_password(self, password: &[u8], salt: &[u8], iterations: u32) -> Vec<u8> {
        match self {
            Hash::Sha256 => {
                pbkdf2::pbkdf2_hmac_array::<Sha256, 32>(password, salt, iterations).to_vec()
            }
            Hash::Sha512 => {
                pbkdf2::pbkdf2_hmac_array::<Sha512, 64>(password, salt, iterations).to_vec()
            }
        }
    }
}

/// RFC 5802 saslname: '=' and ',' escaped.
fn sasl_name(user: &str) -> String {
    user.replace('=', "=3D").replace(',', "=2C")
}

/// Kafka's minimum iteration count (ScramMechanism.minIterations).
const MIN_ITERATIONS: u32 = 4096;
const MAX_ITERATIONS: u32 = 1_000_000;

/// A SCRAM exchange in progress.
pub struct Scram {
    hash: Hash,
    client_first_bare: String,
    client_nonce: String,
    expected_server_signature: Vec<u8>,
}

impl Scram {
    /// Starts an exchange; returns it and the client-first message.
    pub fn start(hash: Hash, user: &str, nonce: String) -> (Scram, Vec<u8>) {
        let bare = format!("n={},r={nonce}", sasl_name(user));
        let first = format!("n,,{bare}");
        (
            Scram {
                hash,
                client_first_bare: bare,
                client_nonce: nonce,
                expected_server_signature: Vec::new(),
            },
            first.into_bytes(),
        )
    }

    /// A fresh random client nonce (32 random bytes, base64).
    pub fn random_nonce() -> Result<String, String> {
        let mut b = [0u8; 32];
        getrandom::getrandom(&mut b)
            .map_err(|e| format!("no random numbers for the SCRAM nonce: {e}"))?;
        Ok(B64.encode(b))
    }

    /// Answers the server-first message with the client-final message.
    pub fn client_final(&mut self, server_first: &[u8], password: &str) -> Result<Vec<u8>, String> {
        let sf =
            std::str::from_utf8(server_first).map_err(|_| "server-first message is not UTF-8")?;
        let mut nonce = None;
        let mut salt = None;
        let mut iterations = None;
        for attr in sf.split(',') {
            match attr.split_once('=') {
                Some(("r", v)) => nonce = Some(v),
                Some(("s", v)) => salt = Some(v),
                Some(("i", v)) => iterations = v.parse::<u32>().ok(),
                Some(("e", v)) => return Err(format!("server error: {v}")),
                _ => {}
            }
        }
        let (Some(nonce), Some(salt), Some(iterations)) = (nonce, salt, iterations) else {
            return Err("malformed server-first message".into());
        };
        if !nonce.starts_with(&self.client_nonce) || nonce.len() == self.client_nonce.len() {
            return Err("server nonce does not extend the client nonce".into());
        }
        if !(MIN_ITERATIONS..=MAX_ITERATIONS).contains(&iterations) {
            return Err(format!("server asked for {iterations} iterations (allowed: {MIN_ITERATIONS}..={MAX_ITERATIONS})"));
        }
        let salt = B64.decode(salt).map_err(|_| "server salt is not base64")?;
        let h = self.hash;
        let salted = h.salted_password(password.as_bytes(), &salt, iterations);
        let client_key = h.hmac(&salted, b"Client Key");
        let stored_key = h.hash(&client_key);
        let without_proof = format!("c=biws,r={nonce}");
        let auth_message = format!("{},{sf},{without_proof}", self.client_first_bare);
        let client_signature = h.hmac(&stored_key, auth_message.as_bytes());
        let proof: Vec<u8> = client_key.iter().zip(&client_signature).map(|(a, b)| a ^ b).collect();
        let server_key = h.hmac(&salted, b"Server Key");
        self.expected_server_signature = h.hmac(&server_key, auth_message.as_bytes());
        Ok(format!("{without_proof},p={}", B64.encode(proof)).into_bytes())
    }

    /// Checks the server-final message (the server proves it knew the password).
    pub fn verify_server_final(&self, server_final: &[u8]) -> Result<(), String> {
        let s =
            std::str::from_utf8(server_final).map_err(|_| "server-final message is not UTF-8")?;
        if let Some(e) = s.strip_prefix("e=") {
            return Err(format!("server error: {e}"));
        }
        let v = s
            .split(',')
            .find_map(|a| a.strip_prefix("v="))
            .ok_or("malformed server-final message")?;
        let sig = B64.decode(v).map_err(|_| "server signature is not base64")?;
        if sig != self.expected_server_signature {
            return Err(
                "the broker's SCRAM server signature is wrong (not the real server?)".into()
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 7677 section 3 test vector (SCRAM-SHA-256).
    #[test]
    fn rfc7677_vector() {
        let (mut s, first) = Scram::start(Hash::Sha256, "user", "rOprNGfwEbeRWgbNEkqO".into());
        assert_eq!(first, b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO");
        let fin = s
            .client_final(
                b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
                "pencil",
            )
            .unwrap();
        assert_eq!(
            String::from_utf8(fin).unwrap(),
            "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
        );
        s.verify_server_final(b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=").unwrap();
        assert!(s.verify_server_final(b"v=AAAA").is_err());
        assert!(s.verify_server_final(b"e=invalid-proof").unwrap_err().contains("invalid-proof"));
    }

    #[test]
    fn rejects_bad_server_first() {
        let (mut s, _) = Scram::start(Hash::Sha512, "a=b,c", "abc".into());
        assert_eq!(s.client_first_bare, "n=a=3Db=2Cc,r=abc");
        assert!(s.client_final(b"r=xyz,s=AAAA,i=4096", "p").unwrap_err().contains("nonce"));
        assert!(s.client_final(b"r=abcd,s=AAAA,i=10", "p").unwrap_err().contains("iterations"));
        assert!(s.client_final(b"r=abcd", "p").is_err());
    }
}
