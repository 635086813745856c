//! Quotes made by tpm2-tools on swtpm, not by modseal: what the shared
//! parsers and checks are tested against.

use super::ak::Ak;

// Made on swtpm 0.7.1 with tpm2-tools 5.4, by tpm2_quote, not modseal:
//   tpm2_createprimary -C e -G rsa2048:rsassa-sha256:null -a "restricted|sign|
//     fixedtpm|fixedparent|sensitivedataorigin|userwithauth" -c ak.ctx
//   tpm2_evictcontrol -C o -c ak.ctx 0x81010101
//   tpm2_readpublic -c 0x81010101 -o RSA_PUB
//   tpm2_quote -c 0x81010101 -l sha256:7,12 -q $(printf modseal-fixture-nonce | xxd -p)
//     -m RSA_MSG -s RSA_SIG
// and the same with -G ecc256:ecdsa-sha256:null at 0x81010102 (ECC_*).
pub(crate) const NONCE_HEX: &str = "6d6f647365616c2d666978747572652d6e6f6e6365";
pub(crate) const RSA_PUB: &str = "01180001000b00050072000000100014000b0800000000000100acb032e40e5ed36d6a6c76c108db1366a86bfc2d1b444c7f048dbf95097cbdc2c7cf12501586f28c90d649e9c474933d72c5696355c06c1ef3197f02c61de42789d12eb4ff0c166e7f99602343ebd123c6e31e9a0318cc7d1d97d5d9825bfc0c32cbdbb3ca0a37588046f8c4a48e8cf9100296e79722166382c52b71337137e5f916f696e615c9d1cc2c955b0648f7620d56398e9a5a3c83bcea9cac3bf8ea5c8c25e98baf82c053276562a638df7d18e42f36ae7c22355f87677e9ff8a2c130e83c35ad38811a2e4ecef9b60489b716dd2726c223add5d6b118c3df25ce5acab042e2370ad035317d10310be2488a229fbc8d41fb0f2b0de8c441e80a4af805";
pub(crate) const RSA_MSG: &str = "ff54434780180022000b10173339fbc5e58be1a6353e2082274e23c7e41039a355fe495e9129010c793600156d6f647365616c2d666978747572652d6e6f6e6365000000000004b7c8000000010000000001201910230016363600000001000b038010000020f5a5fd42d16a20302798ef6ed309979b43003d2320d9f0e8ea9831a92759fb4b";
pub(crate) const RSA_SIG: &str = "0014000b010039d809275363ad1a6a4cc75bcf1e96f64d5b7e3be67dddaad4b85facfcb8b1f2cf74de9dd24c66a6878d46da6d92191c0ea13e2e040003b0426e21fa45c86167c9463e08525578c9f2f79c426db6157f3529be617f1c96fe06894b6c6a833029d2b4cfb6283cd0b4c5f411a5f6e7cc9c37ccb2795cbf9ccf6011f013ef7a348ec610272369f20176761e130f0fa7e25bb0e6150f8244c4c5e4f2eee5ff0963eabf683f5fc74934a58418246768d2395bd7c6bfbf60f7f3cd549a969c0fd0b21116194f84583e103512414b46145105a1d47c54ab9db91488fc636d536da7a1ff4376c902c18af847407f0dbeb542069d3b13f4628e3f149ffc0806f0ce0ddb4f";
pub(crate) const ECC_PUB: &str = "00580023000b00050072000000100018000b000300100020dca8a0884ac52b24099cc58f2851cb3c3c2dda69a11aed05fb51e5150f5ce5890020375a642bf0e76c3e96b767957c73ddc1de504d4751bb5cd08123c2083bfb8398";
pub(crate) const ECC_MSG: &str = "ff54434780180022000b7e9d668641aea80ca5296de16f77f70c715d2d604a023462530249171bff14a500156d6f647365616c2d666978747572652d6e6f6e6365000000000004b7d8000000010000000001201910230016363600000001000b038010000020f5a5fd42d16a20302798ef6ed309979b43003d2320d9f0e8ea9831a92759fb4b";
pub(crate) const ECC_SIG: &str = "0018000b002043a16ea647d398313ee8dd26131d1d8b882f0237ead929129ff8b54cb68007b80020a20084efb4b4d529255f543988e5ece33bd4f03ab9e36a2bff53d79cca732f7b";

/// Hex to bytes.
pub(crate) fn unhex(s: &str) -> Vec<u8> {
    crate::util::hex::parse(s).unwrap()
}

/// The AK of a `*_PUB` fixture (a `tpm2_readpublic -o` file).
pub(crate) fn fixture_ak(pub_hex: &str) -> Ak {
    let file = unhex(pub_hex);
    Ak::from_public(
        0x8101_0101,
        crate::tpm::tpm2b::decode_file("ak.pub", &file).unwrap(),
        false,
    )
    .unwrap()
}

/// A real firmware log: OVMF booting Debian bookworm's 6.1 kernel with
/// `-kernel/-initrd` (tests/data/fw-ovmf-bookworm/README.md says how it was made).
pub(crate) const FIRMWARE_LOG: &[u8] =
    include_bytes!("../../tests/data/fw-ovmf-bookworm/firmware.log");
/// The command line that boot's kernel printed.
pub(crate) fn firmware_cmdline() -> &'static str {
    include_str!("../../tests/data/fw-ovmf-bookworm/cmdline").trim_end_matches('\n')
}
/// The kernel image's digest in that log (event 10, PCR 4).
pub(crate) const FIRMWARE_KERNEL: &str =
    "c3061a8bbabf1f33121facd0196afcfd1bcacaa108f6925af3840d70e5b52478";
/// The initrd's digest in that log (event 22, PCR 9).
pub(crate) const FIRMWARE_INITRD: &str =
    "af28f10820a6ba46102f472f17fce9023d87fdde89936b67d755fc43fe2d7da2";

/// The sha256 PCR values that boot's guest read (`N HEX` lines).
pub(crate) fn firmware_pcrs() -> Vec<Vec<u8>> {
    include_str!("../../tests/data/fw-ovmf-bookworm/pcrs")
        .lines()
        .map(|l| unhex(l.split_whitespace().nth(1).unwrap()))
        .collect()
}

/// [`FIRMWARE_LOG`], parsed.
pub(crate) fn firmware_log() -> crate::measure::tcg::FirmwareLog {
    crate::measure::tcg::parse(FIRMWARE_LOG).unwrap()
}

/// A firmware log's bytes: [`FIRMWARE_LOG`]'s header event, then `events`
/// (their `index` ignored) as `TCG_PCR_EVENT2`s.
pub(crate) fn encode_firmware_log(events: &[crate::measure::tcg::Event]) -> Vec<u8> {
    let size = u32::from_le_bytes(FIRMWARE_LOG[28..32].try_into().unwrap()) as usize;
    let mut out = FIRMWARE_LOG[..32 + size].to_vec();
    for e in events {
        out.extend(e.pcr.to_le_bytes());
        out.extend(e.event_type.to_le_bytes());
        out.extend((e.digests.len() as u32).to_le_bytes());
        for (alg, d) in &e.digests {
            out.extend(alg.to_le_bytes());
            out.extend(d);
        }
        out.extend((e.data.len() as u32).to_le_bytes());
        out.extend(&e.data);
    }
    out
}

#[test]
fn the_firmware_log_encodes_back_to_its_bytes() {
    assert_eq!(encode_firmware_log(&firmware_log().events), FIRMWARE_LOG);
    assert!(!firmware_cmdline().contains('\n'));
}
