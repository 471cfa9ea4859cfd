"""The client's signed acceptance: statement text, signature checks, ssh-keygen interop."""

from __future__ import annotations

import hashlib
import re
import subprocess
from datetime import date, timedelta
from pathlib import Path

import pytest
from pydantic import ValidationError

from handover.bundle.sshsig import SigningKey, sign
from handover.bundle.summary import SealedBundle
from handover.bundle.sums import render_sums
from handover.contract.signers import AllowedSigner, load_signers, parse_allowed_signer
from handover.errors import HandoverError, KeyFormatError
from handover.exit.acceptance import (
    NAMESPACE,
    AcceptanceRejected,
    AcceptanceStatement,
    bundle_sums_sha256,
    parse_statement,
    render_statement,
    sums_sha256,
    verify_statement,
)
from handover.exit.delivery import FolderDelivery
from handover.exit.progress import AcceptanceRecord
from tests.conftest import require_binary

BUNDLE = "acme-2026-20260301T120000Z"
DIGEST = hashlib.sha256(b"the bundle's SHA256SUMS").hexdigest()
TODAY = date(2026, 3, 2)


def statement(**changes: object) -> AcceptanceStatement:
    fields: dict[str, object] = {
        "contract": "acme-2026",
        "contract_title": "Infogérance du SI d'ACME",
        "provider": "Infogérance SAS",
        "client": "ACME SA",
        "bundle": BUNDLE,
        "sums_sha256": DIGEST,
        "decision": "accepted",
        "early_erasure": True,
        "signatory": "Jeanne Dupont, DAF",
        "signed_on": date(2026, 3, 2),
    }
    fields.update(changes)
    return AcceptanceStatement.model_validate(fields)


@pytest.fixture(scope="module")
def key() -> SigningKey:
    return SigningKey.generate()


def signer_of(key: SigningKey, options: str = "") -> AllowedSigner:
    return parse_allowed_signer(f"daf@acme {options}{key.public_line('daf')}".replace("  ", " "))


def check(text: str | bytes, signature: str, signers: list[AllowedSigner]) -> object:
    return verify_statement(text, signature, signers, BUNDLE, DIGEST, today=TODAY)


# -- the text ---------------------------------------------------------------------------------


def test_statement_round_trips_with_its_fields_and_both_languages() -> None:
    s = statement(
        decision="accepted-with-reservations",
        early_erasure=False,
        reservations="db volume is empty\n\n   shares: 2 files missing  ",
    )
    text = render_statement(s)
    assert text.startswith("HANDOVER CLIENT ACCEPTANCE STATEMENT v1\ncontract: acme-2026\n")
    assert f"bundle-sums-sha256: {DIGEST}\n" in text
    assert "decision: accepted-with-reservations\n" in text
    assert "reservations: db volume is empty\n  shares: 2 files missing\n" in text
    assert "PROCÈS-VERBAL DE RÉCEPTION" in text and "CLIENT ACCEPTANCE OF THE RESTITUTION" in text
    parsed = parse_statement(text)
    assert parsed == s
    assert parsed.reservations == "db volume is empty\nshares: 2 files missing"
    assert parse_statement(text.replace("\n", "\r\n").encode()) == s  # saved on Windows


def test_a_statement_in_the_contracts_language_holds_that_language_only() -> None:
    """`contract.language` (#15): French or English prose, each read back as it was printed;
    the bilingual form above is how statements were printed before, and still reads."""
    french = render_statement(statement(language="fr"))
    assert "PROCÈS-VERBAL DE RÉCEPTION DE LA RESTITUTION" in french
    assert "CLIENT ACCEPTANCE" not in french.split("END OF FIELDS", 1)[1]
    assert "Signature : ce texte, inchangé :\n" in french and "Decision:" not in french
    assert parse_statement(french) == statement(language="fr")
    english = render_statement(statement(language="en"))
    assert "CLIENT ACCEPTANCE OF THE RESTITUTION" in english and "PROCÈS-VERBAL" not in english
    assert "Décision" not in english and "Signature: this text, unchanged:\n" in english
    assert parse_statement(english) == statement(language="en")
    # the fields are the same whatever the language: the prose alone differs
    assert french.split("END OF FIELDS")[0] == english.split("END OF FIELDS")[0]
    # an English statement given French prose is refused, not read as another language
    mixed = english.replace("Decision: accepted", "Décision : accepted", 1)
    with pytest.raises(AcceptanceRejected, match="edited after handover printed it"):
        parse_statement(mixed)
    # a French title pasted into an English statement makes it neither form
    with pytest.raises(AcceptanceRejected, match="edited after handover printed it"):
        parse_statement(
            english.replace(
                "\n\nCLIENT", "\n\nPROCÈS-VERBAL DE RÉCEPTION DE LA RESTITUTION\n\nCLIENT", 1
            )
        )


@pytest.mark.parametrize(
    ("old", "new", "words"),
    [
        ("PROCÈS-VERBAL DE RÉCEPTION", "PROCÈS-VERBAL", "edited after handover printed it"),
        ("early-erasure: yes", "early-erasure: oui", "early-erasure must be yes or no"),
        ("HANDOVER CLIENT ACCEPTANCE STATEMENT v1", "ACCEPTANCE", "the first line must be"),
        ("decision: accepted\n", "decision: maybe\n", "decision"),
        ("signatory: Jeanne Dupont, DAF\n", "", "missing signatory"),
        ("date: 2026-03-02\n", "date: 2026-03-02\ndate: 2026-03-03\n", "date given twice"),
        ("END OF FIELDS\n", "", "line 13: expected a field"),
    ],
)
def test_an_edited_or_malformed_statement_is_refused(old: str, new: str, words: str) -> None:
    text = render_statement(statement())
    assert old in text
    with pytest.raises(AcceptanceRejected, match=words):
        parse_statement(text.replace(old, new, 1))


def test_incoherent_statements_do_not_exist() -> None:
    with pytest.raises(ValidationError, match="early erasure can only be asked"):
        statement(decision="refused", reservations="wrong bundle")
    with pytest.raises(ValidationError, match="needs the reservations"):
        statement(decision="accepted-with-reservations", early_erasure=False)
    with pytest.raises(ValidationError, match="SHA-256 in hex"):
        statement(sums_sha256="abc")


# -- the signature ----------------------------------------------------------------------------


def test_a_statement_signed_by_a_client_signer_is_verified(key: SigningKey) -> None:
    text = render_statement(statement())
    verified = check(text, sign(text.encode(), key, NAMESPACE), [signer_of(key)])
    assert verified.signer_fingerprint == key.fingerprint()  # type: ignore[attr-defined]
    assert verified.principal == "daf@acme"  # type: ignore[attr-defined]
    assert verified.statement_sha256 == hashlib.sha256(text.encode()).hexdigest()  # type: ignore[attr-defined]
    assert verified.statement.early_erasure is True  # type: ignore[attr-defined]


def test_unsigned_forged_foreign_and_other_namespace_answers_are_rejected(
    key: SigningKey,
) -> None:
    text = render_statement(statement())
    signers = [signer_of(key)]
    good = sign(text.encode(), key, NAMESPACE)
    with pytest.raises(AcceptanceRejected, match="not signed"):
        check(text, "", signers)
    with pytest.raises(AcceptanceRejected, match="not an SSH signature"):
        check(text, "accepted, trust me", signers)
    forged = sign(b"something else", key, NAMESPACE)  # a real signature, of other bytes
    with pytest.raises(AcceptanceRejected, match="bad signature by daf@acme"):
        check(text, forged, signers)
    other = SigningKey.generate()
    with pytest.raises(
        AcceptanceRejected, match=re.escape(f"{other.fingerprint()}, which is not in")
    ):
        check(text, sign(text.encode(), other, NAMESPACE), signers)
    with pytest.raises(AcceptanceRejected, match="namespace"):
        check(text, sign(text.encode(), key, "handover-bundle"), signers)
    with pytest.raises(AcceptanceRejected, match="may not sign in namespace"):
        check(text, good, [signer_of(key, 'namespaces="git,file" ')])
    with pytest.raises(AcceptanceRejected, match=r"add reversibility\.client_signers"):
        check(text, good, [])
    assert check(text, good, [signer_of(other), signer_of(key)])  # the right one among several


def test_a_statement_edited_after_signing_fails_its_signature(key: SigningKey) -> None:
    text = render_statement(statement(decision="refused", early_erasure=False, reservations="x"))
    signature = sign(text.encode(), key, NAMESPACE)
    edited = render_statement(statement())  # well formed, says "accepted"
    with pytest.raises(AcceptanceRejected, match="bad signature"):
        check(edited, signature, [signer_of(key)])


def test_the_statement_must_name_the_delivered_bundle_and_its_sums(key: SigningKey) -> None:
    signers = [signer_of(key)]
    cases: list[tuple[dict[str, object], str]] = [
        ({"bundle": "acme-2026-older"}, "not the delivered"),
        ({"sums_sha256": "0" * 64}, "SHA256SUMS hash"),
        ({"contract": "other-2026"}, "for contract 'other-2026'"),
        ({"signed_on": TODAY + timedelta(days=5)}, "in the future"),
    ]
    for changes, words in cases:
        text = render_statement(statement(**changes))
        with pytest.raises(AcceptanceRejected, match=words):
            verify_statement(
                text,
                sign(text.encode(), key, NAMESPACE),
                signers,
                BUNDLE,
                DIGEST,
                expected_contract="acme-2026",
                today=TODAY,
            )


def test_a_well_signed_but_malformed_statement_is_rejected(key: SigningKey) -> None:
    text = "I accept everything.\n"
    with pytest.raises(AcceptanceRejected, match="malformed acceptance statement"):
        check(text, sign(text.encode(), key, NAMESPACE), [signer_of(key)])


# -- OpenSSH ----------------------------------------------------------------------------------


def test_ssh_keygen_signatures_verify_and_ours_verify_with_ssh_keygen(tmp_path: Path) -> None:
    ssh_keygen = require_binary("ssh-keygen", "openssh-client")
    key_file = tmp_path / "client"
    subprocess.run(
        [ssh_keygen, "-q", "-t", "ed25519", "-N", "", "-C", "daf", "-f", str(key_file)],
        check=True,
    )
    public = key_file.with_suffix(".pub").read_text().strip()
    signers = load_signers([f"daf@acme {public}"], tmp_path, "reversibility.client_signers")
    statement_file = tmp_path / "acceptance.txt"
    statement_file.write_text(render_statement(statement()), encoding="utf-8")
    subprocess.run(
        [ssh_keygen, "-Y", "sign", "-n", NAMESPACE, "-f", str(key_file), str(statement_file)],
        check=True,
        capture_output=True,
    )
    signature = statement_file.with_name("acceptance.txt.sig").read_text()
    verified = check(statement_file.read_bytes(), signature, signers)
    expected = subprocess.run(
        [ssh_keygen, "-l", "-f", str(key_file.with_suffix(".pub"))],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()[1]
    assert verified.signer_fingerprint == expected  # type: ignore[attr-defined]

    # handover's signature of the same statement, checked by OpenSSH with the signers' file.
    ours = SigningKey.from_openssh(key_file.read_bytes(), "test key")
    allowed = tmp_path / "allowed_signers"
    allowed.write_text("\n".join(s.line() for s in signers) + "\n")
    sig_file = tmp_path / "ours.sig"
    sig_file.write_text(sign(statement_file.read_bytes(), ours, NAMESPACE))

    def openssh_verify(namespace: str) -> subprocess.CompletedProcess[str]:
        command = [ssh_keygen, "-Y", "verify", "-f", str(allowed), "-I", "daf@acme"]
        with statement_file.open("rb") as message:
            return subprocess.run(
                [*command, "-n", namespace, "-s", str(sig_file)],
                stdin=message,
                capture_output=True,
                text=True,
                check=False,
            )

    result = openssh_verify(NAMESPACE)
    assert result.returncode == 0, result.stderr
    assert "Good" in result.stdout
    # ... and OpenSSH refuses it in another namespace, as handover does.
    assert openssh_verify("handover-bundle").returncode != 0


# -- signers, digests, records ----------------------------------------------------------------


def test_allowed_signers_entries_and_files(tmp_path: Path, key: SigningKey) -> None:
    line = f'daf@acme,dsi@acme namespaces="handover-acceptance" {key.public_line("c")}'
    signer = parse_allowed_signer(line)
    assert signer.principals == ("daf@acme", "dsi@acme")
    assert signer.allows(NAMESPACE) and not signer.allows("git")
    assert parse_allowed_signer(signer.line()) == signer
    with pytest.raises(KeyFormatError, match="begins with the key"):
        parse_allowed_signer(key.public_line())
    with pytest.raises(KeyFormatError, match="cert-authority"):
        parse_allowed_signer(f"ca@acme cert-authority {key.public_line()}")
    with pytest.raises(KeyFormatError, match="secret key"):
        parse_allowed_signer(key.private_openssh().decode())
    folder = tmp_path / "keys"
    folder.mkdir()
    (folder / "client.allowed_signers").write_text(
        f"# the DAF\n\ndaf@acme {key.public_line('c')}\nbroken line\n"
    )
    with pytest.raises(KeyFormatError, match=r"client.allowed_signers:4"):
        load_signers(["file:keys/client.allowed_signers"], tmp_path, "f")
    (folder / "client.allowed_signers").write_text(f"# the DAF\ndaf@acme {key.public_line()}\n")
    loaded = load_signers(["file:keys/client.allowed_signers"], tmp_path, "f")
    assert [s.fingerprint for s in loaded] == [key.fingerprint()]
    with pytest.raises(KeyFormatError, match="cannot read"):
        load_signers(["file:keys/missing"], tmp_path, "f")


def test_sums_hash_is_the_hash_of_the_delivered_sums_file(tmp_path: Path) -> None:
    files = {"README.txt": "1" * 64, "volumes/0001-www.tar.age": "2" * 64}
    delivered = tmp_path / BUNDLE
    delivered.mkdir()
    (delivered / "SHA256SUMS").write_bytes(render_sums(files))
    sealed = SealedBundle(
        location=str(delivered),
        files=files,
        manifest_sha256="3" * 64,
        provider_key="ssh-ed25519 AAAA provider",
        created="2026-03-01T12:00:00+00:00",
        volumes=[],
    )
    delivery = FolderDelivery(location=str(delivered))
    expected = hashlib.sha256((delivered / "SHA256SUMS").read_bytes()).hexdigest()
    assert sums_sha256(files) == expected
    assert bundle_sums_sha256(sealed, delivery) == expected
    (delivered / "SHA256SUMS").write_bytes(render_sums({**files, "extra": "4" * 64}))
    with pytest.raises(HandoverError, match="not the one sealed"):
        bundle_sums_sha256(sealed, delivery)
    assert bundle_sums_sha256(sealed) == expected  # S3: from the sealed hashes alone


def test_acceptance_records_say_accepted_only_for_accepted() -> None:
    base = {"accepted_by": "x", "comment": "", "at": "2026-03-02T00:00:00+00:00"}
    with pytest.raises(ValidationError, match="accepted must be False"):
        AcceptanceRecord.model_validate(
            {**base, "accepted": True, "decision": "accepted-with-reservations"}
        )
    old = AcceptanceRecord.model_validate({**base, "accepted": True})  # before signed answers
    assert old.decision is None and old.signature == ""
