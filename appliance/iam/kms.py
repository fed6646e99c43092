"""The built-in KMS and the data keys of server-side encryption.

Named keys (`stowage kms key create|list|disable|enable|rotate`): each has an AWS-style key id
(a UUID) and a name (its alias: `alias/NAME`). Its key material, one version per rotation, is
stored wrapped by the master key (engine/keystore.py, KmsKeyRecord); the newest version wraps
new data keys, older ones still unwrap theirs. A disabled key wraps and unwraps nothing: writes
and reads of the objects it protects fail with KMS.DisabledException. `aws/s3` is the key
SSE-KMS uses when a request names none (created on first use, like AWS's managed key).

Data keys: a write asks for a fresh SegmentKey per segment (engine/crypto.py) and drops it when
done; a read gets a resolver that opens envelopes. Envelopes (version 1, JSON):

    SSE-S3   {"v": 1, "mode": "AES256", "wrapped": b64(master-key blob)}
    SSE-KMS  {"v": 1, "mode": "aws:kms", "key_id": ID, "key_version": N, "context": {...},
              "wrapped": b64(nonce | AES-256-GCM(key material, data key))}
              associated data: key id, version and the encryption context (canonical JSON)
    SSE-C    {"v": 1, "mode": "SSE-C", "salt": b64, "hmac": b64(HMAC-SHA256(salt, customer key)),
              "wrapped": b64(nonce | AES-256-GCM(customer key, data key))}

None holds a plaintext key. The SSE-C customer key is never stored: its salted HMAC tells whether
a later request brings the same key. The encryption context is kept in clear (S3 returns it).
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import hmac
import json
import re
import secrets
import time
import uuid
import weakref
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from appliance.engine import entropy, keystore
from appliance.engine.crypto import KEY_BYTES, KeyResolver, SegmentKey
from appliance.engine.errors import FormatError, InvalidArgument, StowageError
from appliance.engine.metadb import MetaDB
from appliance.engine.records import KmsKeyRecord, KmsKeyVersion

from .masterkey import MasterKey, wrapping_key

MODE_S3 = "AES256"
MODE_KMS = "aws:kms"
MODE_C = "SSE-C"
ENVELOPE_VERSION = 1
DEFAULT_KEY_NAME = "aws/s3"
NONCE_BYTES = 12
S3_KEY_CACHE = 4096
_NAME_RE = re.compile(r"^[A-Za-z0-9/_-]{1,250}$")
_S3_CONTEXT = b"stowage sse-s3 data key"
_SSEC_AAD = b"stowage sse-c data key v1"
_KMS_AAD = b"stowage kms data key v1\x00"

# --- errors (codes are AWS's where S3 reports them: the gateway maps the rest) -----------------


class KmsNotFound(StowageError):
    """The KMS key does not exist (S3: 400 KMS.NotFoundException)."""

    code = "KMS.NotFoundException"


class KmsDisabled(StowageError):
    """The KMS key is disabled (S3: 400 KMS.DisabledException)."""

    code = "KMS.DisabledException"


class KmsKeyExists(StowageError):
    """A KMS key of that name exists already."""

    code = "KMS.AlreadyExistsException"


class KmsInvalidCiphertext(StowageError):
    """A data key wrapped by a KMS key does not open (damaged, or its context altered)."""

    code = "KMS.InvalidCiphertextException"


class CustomerKeyRequired(StowageError):
    """The object is SSE-C encrypted and the request brings no customer key (S3: 400
    InvalidRequest on GET/HEAD/UploadPart/CopyObject source)."""

    code = "SseCustomerKeyRequired"


class CustomerKeyMismatch(StowageError):
    """The customer key given is not the one the object was written with (S3: 403 AccessDenied)."""

    code = "SseCustomerKeyMismatch"


# --- what callers see -------------------------------------------------------------------------


@dataclass(frozen=True)
class KmsKeyInfo:
    key_id: str
    name: str
    enabled: bool
    created_ns: int
    description: str
    versions: int
    rotated_ns: int  # when the newest material was made (= created_ns before a rotation)

    @classmethod
    def of(cls, rec: KmsKeyRecord) -> KmsKeyInfo:
        newest = rec.versions[-1].created_ns if rec.versions else rec.created_ns
        return cls(rec.key_id, rec.name, rec.enabled, rec.created_ns, rec.description, len(rec.versions), newest)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class EnvelopeInfo:
    """What HEAD/GET report of an object's encryption."""

    mode: str  # AES256 | aws:kms | SSE-C
    kms_key_id: str = ""
    context: dict[str, str] = field(default_factory=dict)


def key_arn(key_id: str, region: str, account_id: str) -> str:
    """The key id as S3 returns it (x-amz-server-side-encryption-aws-kms-key-id)."""
    return f"arn:aws:kms:{region}:{account_id}:key/{key_id}"


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def _unb64(env: Mapping[str, Any], name: str) -> bytes:
    try:
        return base64.b64decode(str(env[name]), validate=True)
    except (KeyError, binascii.Error) as exc:
        raise FormatError(f"damaged encryption envelope: {name}") from exc


def _mode(env: Mapping[str, Any]) -> str:
    if env.get("v") != ENVELOPE_VERSION or env.get("mode") not in (MODE_S3, MODE_KMS, MODE_C):
        raise FormatError(f"encryption envelope version {env.get('v')!r} mode {env.get('mode')!r} "
                          "is not supported by this version")
    return str(env["mode"])


def _kms_aad(key_id: str, version: int, context: Mapping[str, str]) -> bytes:
    canonical = json.dumps(dict(context), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return _KMS_AAD + f"{key_id}\x00{version}\x00".encode() + canonical.encode()


def _material_context(key_id: str, version: int) -> bytes:
    return f"kms-key:{key_id}:{version}".encode()


def _seal(key: bytes, secret: bytes, aad: bytes) -> bytes:
    nonce = secrets.token_bytes(NONCE_BYTES)
    return nonce + AESGCM(key).encrypt(nonce, secret, aad)


def _unseal(key: bytes, blob: bytes, aad: bytes) -> bytes | None:
    try:
        return AESGCM(key).decrypt(blob[:NONCE_BYTES], blob[NONCE_BYTES:], aad)
    except InvalidTag:
        return None


def describe_envelope(env: Mapping[str, Any]) -> EnvelopeInfo:
    mode = _mode(env)
    if mode == MODE_KMS:
        return EnvelopeInfo(mode, str(env.get("key_id", "")), dict(env.get("context") or {}))
    return EnvelopeInfo(mode)


def customer_key_matches(env: Mapping[str, Any], customer_key: bytes) -> bool:
    """Whether an SSE-C envelope was made with this customer key (constant time)."""
    mac = hmac.new(_unb64(env, "salt"), customer_key, hashlib.sha256).digest()
    return hmac.compare_digest(mac, _unb64(env, "hmac"))


def customer_key_proof(customer_key: bytes) -> dict[str, str]:
    """{"salt", "hmac"}: a salted HMAC-SHA256 of an SSE-C customer key, which tells whether a later
    request brings the same key (customer_key_matches) and reveals nothing of it."""
    salt = secrets.token_bytes(16)
    return {"salt": _b64(salt), "hmac": _b64(hmac.new(salt, customer_key, hashlib.sha256).digest())}


def sse_c_key(customer_key: bytes) -> SegmentKey:
    """A fresh data key wrapped by an SSE-C customer key (32 bytes, already checked against its MD5)."""
    if len(customer_key) != KEY_BYTES:
        raise InvalidArgument("The secret key was invalid for the specified algorithm.")
    data_key = entropy.token_bytes(KEY_BYTES)
    env = {"v": ENVELOPE_VERSION, "mode": MODE_C, **customer_key_proof(customer_key),
           "wrapped": _b64(_seal(customer_key, data_key, _SSEC_AAD))}
    return SegmentKey(data_key, env, opaque_etag=True)


def envelope_check(master: MasterKey) -> Callable[[dict[str, Any]], None]:
    """For `recover-metadata`: raise unless `master` opens what it alone can open (SSE-S3 data
    keys; KMS key material is checked when it is used, SSE-C needs the customer's key)."""

    def check(env: dict[str, Any]) -> None:
        if _mode(env) == MODE_S3:
            master.unwrap(_unb64(env, "wrapped"), _S3_CONTEXT)

    return check


class Kms:
    """Named keys and data keys over one metadata DB and the master key."""

    def __init__(self, db: MetaDB, master: MasterKey) -> None:
        self.db = db
        self.master = master
        self._material: dict[tuple[str, int], bytes] = {}  # unwrapped key material, by (key id, version)
        # SSE-S3 keys handed out and not yet dropped: rotate-master waits for those wrapped by an
        # old master key before its last sweep (a write in flight commits its envelope late)
        self._live: weakref.WeakSet[SegmentKey] = weakref.WeakSet()
        # wrapped SSE-S3 data key -> data key: a GET of a hot object unwraps nothing. (SSE-KMS
        # keys are not cached: every use checks that their KMS key is still enabled; SSE-C keys
        # are checked against the request's key every time.)
        self._s3_keys = functools.lru_cache(maxsize=S3_KEY_CACHE)(self._unwrap_s3)

    # --- named keys ---------------------------------------------------------------------------

    def find(self, ref: str) -> KmsKeyRecord:
        """A key by id, name, `alias/NAME` or ARN (`arn:aws:kms:...:key/ID` or `...:alias/NAME`)."""
        ref = ref.strip()
        if ref.startswith("arn:"):
            ref = ref.split(":", 5)[-1]
        if ref.startswith("key/"):
            ref = ref[4:]
        name = ref[6:] if ref.startswith("alias/") else ref
        if name == ref:
            rec = keystore.kms_key(self.db, ref)
            if rec is not None:
                return rec
        for rec in keystore.kms_keys(self.db):
            if rec.name == name:
                return rec
        raise KmsNotFound(f"Key '{ref}' does not exist")

    def _new_version(self, key_id: str, version: int) -> KmsKeyVersion:
        material = secrets.token_bytes(KEY_BYTES)
        wrapped = self.master.wrap(material, _material_context(key_id, version))
        self._material[(key_id, version)] = material
        return KmsKeyVersion(version, _b64(wrapped), time.time_ns())

    def create_key(self, name: str, description: str = "") -> KmsKeyInfo:
        if not _NAME_RE.match(name) or name.startswith("aws/"):
            raise InvalidArgument(f"invalid KMS key name {name!r}: 1-250 letters, digits, '/', '_', '-', "
                                  "not starting with 'aws/'")
        return self._create(name, description)

    def _create(self, name: str, description: str) -> KmsKeyInfo:
        if any(rec.name == name for rec in keystore.kms_keys(self.db)):
            raise KmsKeyExists(f"a KMS key named {name!r} exists already")
        key_id = str(uuid.uuid4())
        rec = KmsKeyRecord(key_id, name, time.time_ns(), description=description,
                           versions=[self._new_version(key_id, 1)])
        keystore.save_kms_keys(self.db, [rec])
        return KmsKeyInfo.of(rec)

    def default_key(self) -> KmsKeyInfo:
        """`aws/s3`: the key SSE-KMS uses when a request names none (made on first use)."""
        try:
            return KmsKeyInfo.of(self.find("alias/" + DEFAULT_KEY_NAME))
        except KmsNotFound:
            return self._create(DEFAULT_KEY_NAME, "default key for SSE-KMS")

    def list_keys(self) -> list[KmsKeyInfo]:
        return sorted((KmsKeyInfo.of(r) for r in keystore.kms_keys(self.db)), key=lambda k: (k.name, k.key_id))

    def describe(self, ref: str) -> KmsKeyInfo:
        return KmsKeyInfo.of(self.find(ref))

    def set_enabled(self, ref: str, enabled: bool) -> KmsKeyInfo:
        rec = self.find(ref)
        rec.enabled = enabled
        keystore.save_kms_keys(self.db, [rec])
        return KmsKeyInfo.of(rec)

    def rotate_key(self, ref: str) -> KmsKeyInfo:
        """New key material for new data keys; the older versions keep opening theirs."""
        rec = self.find(ref)
        rec.versions.append(self._new_version(rec.key_id, rec.versions[-1].version + 1))
        keystore.save_kms_keys(self.db, [rec])
        return KmsKeyInfo.of(rec)

    def _material_of(self, rec: KmsKeyRecord, version: int) -> bytes:
        cached = self._material.get((rec.key_id, version))
        if cached is not None:
            return cached
        for v in rec.versions:
            if v.version == version:
                material = self.master.unwrap(base64.b64decode(v.wrapped), _material_context(rec.key_id, version))
                self._material[(rec.key_id, version)] = material
                return material
        raise KmsNotFound(f"KMS key {rec.key_id} has no key material version {version}")

    def _usable(self, key_id: str) -> KmsKeyRecord:
        rec = keystore.kms_key(self.db, key_id)
        if rec is None:
            raise KmsNotFound(f"Key '{key_id}' does not exist")
        if not rec.enabled:
            raise KmsDisabled(f"{key_id} is disabled.")
        return rec

    # --- data keys ----------------------------------------------------------------------------

    def sse_s3_key(self) -> SegmentKey:
        """A fresh data key wrapped by the master key (SSE-S3)."""
        data_key = entropy.token_bytes(KEY_BYTES)
        env = {"v": ENVELOPE_VERSION, "mode": MODE_S3, "wrapped": _b64(self.master.wrap(data_key, _S3_CONTEXT))}
        key = SegmentKey(data_key, env)
        self._live.add(key)
        return key

    def sse_kms_key(self, ref: str | None, context: Mapping[str, str] | None = None) -> SegmentKey:
        """A fresh data key wrapped by a named key (None: `aws/s3`), bound to the encryption context."""
        rec = self._usable(self.find(ref).key_id if ref else self.default_key().key_id)
        version = rec.versions[-1].version
        data_key = entropy.token_bytes(KEY_BYTES)
        ctx = {str(k): str(v) for k, v in (context or {}).items()}
        wrapped = _seal(self._material_of(rec, version), data_key, _kms_aad(rec.key_id, version, ctx))
        env = {"v": ENVELOPE_VERSION, "mode": MODE_KMS, "key_id": rec.key_id, "key_version": version,
               "context": ctx, "wrapped": _b64(wrapped)}
        return SegmentKey(data_key, env, opaque_etag=True)

    def open_envelope(self, env: Mapping[str, Any], customer_key: bytes | None = None) -> bytes:
        """The data key of an envelope (KmsDisabled, KmsNotFound, KmsInvalidCiphertext,
        CustomerKeyRequired, CustomerKeyMismatch, MasterKeyError when it cannot be opened)."""
        mode = _mode(env)
        if mode == MODE_S3:
            return self._s3_keys(str(env.get("wrapped", "")))
        if mode == MODE_KMS:
            rec = self._usable(str(env.get("key_id", "")))
            version = int(env.get("key_version", 0))
            aad = _kms_aad(rec.key_id, version, env.get("context") or {})
            data_key = _unseal(self._material_of(rec, version), _unb64(env, "wrapped"), aad)
            if data_key is None:
                raise KmsInvalidCiphertext(f"a data key of KMS key {rec.key_id} failed authentication")
            return data_key
        if customer_key is None:
            raise CustomerKeyRequired("The object was stored using a form of Server Side Encryption. "
                                      "The correct parameters must be provided to retrieve the object.")
        if not customer_key_matches(env, customer_key):
            raise CustomerKeyMismatch("The provided customer key does not match the one the object was stored with.")
        data_key = _unseal(customer_key, _unb64(env, "wrapped"), _SSEC_AAD)
        if data_key is None:
            raise CustomerKeyMismatch("The provided customer key does not open the object's data key.")
        return data_key

    def _unwrap_s3(self, wrapped: str) -> bytes:
        return self.master.unwrap(_unb64({"wrapped": wrapped}, "wrapped"), _S3_CONTEXT)

    def resolver(self, customer_key: bytes | None = None) -> KeyResolver:
        """For reads: envelope -> data key (SSE-C objects need the request's customer key)."""
        return lambda env: self.open_envelope(env, customer_key)

    # --- the master key's side of rotate-master (iam/rotation.py) -----------------------------

    def rewrap_material(self, master: MasterKey) -> int:
        """Re-wrap every KMS key's material with the current master key; returns how many."""
        recs = keystore.kms_keys(self.db)
        changed: list[KmsKeyRecord] = []
        n = 0
        for rec in recs:
            versions = []
            for v in rec.versions:
                blob = base64.b64decode(v.wrapped)
                if not master.wrapped_by_current(blob):
                    ctx = _material_context(rec.key_id, v.version)
                    v = KmsKeyVersion(v.version, _b64(master.wrap(master.unwrap(blob, ctx), ctx)), v.created_ns)
                    n += 1
                versions.append(v)
            if versions != rec.versions:
                rec.versions = versions
                changed.append(rec)
        if changed:
            keystore.save_kms_keys(self.db, changed)
        return n

    def rewrap_envelope(self, env: dict[str, Any]) -> dict[str, Any] | None:
        """An SSE-S3 envelope wrapped by an old master key, re-wrapped (None: nothing to do)."""
        if env.get("mode") != MODE_S3:
            return None  # SSE-KMS and SSE-C data keys are not wrapped by the master key
        blob = _unb64(env, "wrapped")
        if self.master.wrapped_by_current(blob):
            return None
        return dict(env, wrapped=_b64(self.master.wrap(self.master.unwrap(blob, _S3_CONTEXT), _S3_CONTEXT)))

    def writes_in_flight(self, master_keys: set[str]) -> int:
        """SSE-S3 data keys handed out, wrapped by one of `master_keys`, and still in use."""
        return sum(1 for k in list(self._live) if wrapping_key(_unb64(k.envelope, "wrapped")) in master_keys)


# --- what `stowage kms key ...` runs (control ops with the daemon up, offline sessions without) ---

KmsOp = Callable[[Kms, dict[str, Any]], Any]


def _name(a: dict[str, Any]) -> str:
    return str(a.get("name", ""))


OPS: dict[str, KmsOp] = {
    "kms.key.create": lambda k, a: k.create_key(_name(a), str(a.get("description", ""))).to_json(),
    "kms.key.list": lambda k, a: [i.to_json() for i in k.list_keys()],
    "kms.key.describe": lambda k, a: k.describe(_name(a)).to_json(),
    "kms.key.disable": lambda k, a: k.set_enabled(_name(a), False).to_json(),
    "kms.key.enable": lambda k, a: k.set_enabled(_name(a), True).to_json(),
    "kms.key.rotate": lambda k, a: k.rotate_key(_name(a)).to_json(),
}
