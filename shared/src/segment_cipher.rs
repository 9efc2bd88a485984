//! Whole-segment AES-128-CBC with PKCS7 padding, as HLS `METHOD=AES-128` requires (RFC 8216 §5.2).
//!
//! Every segment gets its own random IV, written explicitly into its `EXT-X-KEY` tag, so no two
//! segments under one key share an IV.

use aes::cipher::{block_padding::Pkcs7, BlockDecryptMut, BlockEncryptMut, KeyIvInit};

use crate::{ContentKey, Error};

type Encryptor = cbc::Encryptor<aes::Aes128>;
type Decryptor = cbc::Decryptor<aes::Aes128>;

pub const IV_LEN: usize = 16;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Iv(pub [u8; IV_LEN]);

impl Iv {
    pub fn random() -> Result<Self, Error> {
        let mut iv = [0u8; IV_LEN];
        getrandom::getrandom(&mut iv).map_err(|e| Error::Random(e.to_string()))?;
        Ok(Iv(iv))
    }

    /// The `IV` attribute value of `EXT-X-KEY`: `0x` followed by 32 hex digits.
    pub fn to_hls_attribute(&self) -> String {
        format!("0x{}", hex::encode_upper(self.0))
    }
}

/// Encrypts `plaintext` into a new buffer (PKCS7 always adds 1..=16 bytes).
pub fn encrypt_segment(key: &ContentKey, iv: &Iv, plaintext: &[u8]) -> Vec<u8> {
    Encryptor::new(key.expose().into(), (&iv.0).into()).encrypt_padded_vec_mut::<Pkcs7>(plaintext)
}

/// Encrypts in place: `buffer` holds the plaintext and grows by the padding.
pub fn encrypt_segment_in_place(key: &ContentKey, iv: &Iv, buffer: &mut Vec<u8>) {
    let len = buffer.len();
    buffer.resize(len + IV_LEN - len % IV_LEN, 0);
    let cipher = Encryptor::new(key.expose().into(), (&iv.0).into());
    // The buffer was just sized to a whole number of blocks with room for the padding.
    let written = cipher.encrypt_padded_mut::<Pkcs7>(buffer, len).map(|out| out.len()).unwrap_or(0);
    debug_assert_eq!(written, buffer.len());
}

pub fn decrypt_segment(key: &ContentKey, iv: &Iv, ciphertext: &[u8]) -> Result<Vec<u8>, Error> {
    Decryptor::new(key.expose().into(), (&iv.0).into())
        .decrypt_padded_vec_mut::<Pkcs7>(ciphertext)
        .map_err(|_| Error::Decrypt("bad padding: wrong key or IV, or a damaged segment".into()))
}

/// `cbcs` pattern encryption (ISO/IEC 23001-7 §10.4) of one protected range, in place: of every
/// `crypt + skip` 16-byte blocks the first `crypt` are encrypted, chaining CBC from `iv` through
/// the encrypted blocks only; a trailing partial block stays clear. `(0, 0)` (no pattern, as
/// audio tracks use) encrypts every whole block.
pub fn cbcs_encrypt_in_place(key: &ContentKey, iv: &[u8; IV_LEN], data: &mut [u8], pattern: (u8, u8)) {
    let mut cipher = Encryptor::new(key.expose().into(), iv.into());
    for block in pattern_blocks(data, pattern) {
        cipher.encrypt_block_mut(block.into());
    }
}

/// The inverse of [`cbcs_encrypt_in_place`].
pub fn cbcs_decrypt_in_place(key: &ContentKey, iv: &[u8; IV_LEN], data: &mut [u8], pattern: (u8, u8)) {
    let mut cipher = Decryptor::new(key.expose().into(), iv.into());
    for block in pattern_blocks(data, pattern) {
        cipher.decrypt_block_mut(block.into());
    }
}

fn pattern_blocks(data: &mut [u8], (crypt, skip): (u8, u8)) -> impl Iterator<Item = &mut [u8]> {
    let (crypt, skip) = if crypt == 0 { (1usize, 0usize) } else { (usize::from(crypt), usize::from(skip)) };
    data.chunks_exact_mut(IV_LEN).enumerate().filter(move |(i, _)| i % (crypt + skip) < crypt).map(|(_, block)| block)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> ContentKey {
        ContentKey::from_hex("000102030405060708090a0b0c0d0e0f").unwrap()
    }

    #[test]
    fn matches_nist_sp800_38a_cbc_vector() {
        // NIST SP 800-38A F.2.1 (CBC-AES128.Encrypt), first block; PKCS7 then adds one full block.
        let key = ContentKey::from_hex("2b7e151628aed2a6abf7158809cf4f3c").unwrap();
        let iv = Iv(hex::decode("000102030405060708090a0b0c0d0e0f").unwrap().try_into().unwrap());
        let plaintext = hex::decode("6bc1bee22e409f96e93d7e117393172a").unwrap();
        let ciphertext = encrypt_segment(&key, &iv, &plaintext);
        assert_eq!(hex::encode(&ciphertext[..16]), "7649abac8119b246cee98e9b12e9197d");
        assert_eq!(ciphertext.len(), 32);
    }

    #[test]
    fn round_trips_every_padding_length() {
        let iv = Iv::random().unwrap();
        for len in 0..50 {
            let plain: Vec<u8> = (0..len as u8).collect();
            let enc = encrypt_segment(&key(), &iv, &plain);
            assert_eq!(enc.len(), (len / 16 + 1) * 16);
            let mut in_place = plain.clone();
            encrypt_segment_in_place(&key(), &iv, &mut in_place);
            assert_eq!(in_place, enc);
            assert_eq!(decrypt_segment(&key(), &iv, &enc).unwrap(), plain);
        }
    }

    #[test]
    fn wrong_key_is_refused_or_garbled() {
        let iv = Iv::random().unwrap();
        let plain = vec![0x47u8; 188 * 10];
        let enc = encrypt_segment(&key(), &iv, &plain);
        let other = ContentKey::from_hex("ffeeddccbbaa99887766554433221100").unwrap();
        match decrypt_segment(&other, &iv, &enc) {
            Ok(garbled) => assert_ne!(garbled, plain),
            Err(e) => assert!(e.to_string().contains("wrong key")),
        }
    }

    #[test]
    fn iv_attribute_is_hex_with_prefix() {
        let iv = Iv([0xab; 16]);
        assert_eq!(iv.to_hls_attribute(), format!("0x{}", "AB".repeat(16)));
    }

    #[test]
    fn cbcs_encrypts_one_block_in_ten_and_leaves_a_partial_block_clear() {
        let key = ContentKey::from_bytes([7; 16]);
        let iv = [9u8; IV_LEN];
        let plain: Vec<u8> = (0..(16 * 11 + 5)).map(|i| i as u8).collect();
        let mut data = plain.clone();
        cbcs_encrypt_in_place(&key, &iv, &mut data, (1, 9));
        let changed: Vec<bool> = data.chunks(16).zip(plain.chunks(16)).map(|(a, b)| a != b).collect();
        assert_eq!(changed, [true, false, false, false, false, false, false, false, false, false, true, false]);
        cbcs_decrypt_in_place(&key, &iv, &mut data, (1, 9));
        assert_eq!(data, plain);
        let mut whole = plain.clone();
        cbcs_encrypt_in_place(&key, &iv, &mut whole, (0, 0));
        assert!(whole.chunks(16).take(11).zip(plain.chunks(16)).all(|(a, b)| a != b), "every whole block");
        assert_eq!(&whole[176..], &plain[176..], "the partial block stays clear");
    }
}
