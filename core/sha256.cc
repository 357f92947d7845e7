#include "core/sha256.h"

#include <openssl/evp.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"

namespace shardlm {

struct Sha256::State {
  EVP_MD_CTX* ctx = nullptr;
};

Sha256::Sha256() : state_(std::make_unique<State>()) {
  state_->ctx = EVP_MD_CTX_new();
  EVP_DigestInit_ex(state_->ctx, EVP_sha256(), nullptr);
}

Sha256::~Sha256() { EVP_MD_CTX_free(state_->ctx); }

void Sha256::Update(absl::Span<const uint8_t> bytes) {
  EVP_DigestUpdate(state_->ctx, bytes.data(), bytes.size());
}

std::string Sha256::Finish() {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_DigestFinal_ex(state_->ctx, out, &len);
  return std::string(reinterpret_cast<char*>(out), len);
}

absl::StatusOr<std::string> Sha256File(const std::string& path,
                                       const std::function<void(uint64_t, uint64_t)>& progress) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr) {
    return absl::NotFoundError(absl::StrCat("cannot open ", path, ": ", std::strerror(errno)));
  }
  std::fseek(f, 0, SEEK_END);
  const uint64_t total = static_cast<uint64_t>(std::ftell(f));
  std::fseek(f, 0, SEEK_SET);
  Sha256 hash;
  std::vector<uint8_t> buf(4 << 20);
  uint64_t done = 0;
  size_t n;
  while ((n = std::fread(buf.data(), 1, buf.size(), f)) > 0) {
    hash.Update(absl::MakeConstSpan(buf.data(), n));
    done += n;
    if (progress) progress(done, total);
  }
  const bool error = std::ferror(f) != 0;
  std::fclose(f);
  if (error) return absl::DataLossError(absl::StrCat("error reading ", path));
  return hash.Finish();
}

std::string HexDigest(const std::string& digest) { return absl::BytesToHexString(digest); }

}  // namespace shardlm
