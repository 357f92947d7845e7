#include "core/model_loader.h"

#include <sys/stat.h>

#include "absl/strings/str_cat.h"
#include "core/gguf_image.h"
#include "core/hf_model.h"
#include "core/hf_tokenizer.h"
#include "core/status_macros.h"

namespace shardlm {

absl::StatusOr<std::unique_ptr<GgufWriter>> ConvertHfDir(const std::string& dir) {
  ASSIGN_OR_RETURN(GgufMetadata tokenizer, TokenizerMetadataFromHfDir(dir));
  return GgufWriterFromHfDir(dir, std::move(tokenizer));
}

absl::StatusOr<std::unique_ptr<GgufFile>> OpenModelFile(const std::string& path,
                                                        const ModelLoadProgress& progress,
                                                        FileMemory memory) {
  struct stat st;
  if (stat(path.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) return GgufFile::Open(path, memory);
  if (!IsHfModelDir(path)) {
    return absl::InvalidArgumentError(absl::StrCat(
        path, ": is a directory but not a Hugging Face model folder (no config.json)"));
  }
  ASSIGN_OR_RETURN(std::unique_ptr<GgufWriter> writer, ConvertHfDir(path));
  const std::string header = writer->EncodeHeader();
  ASSIGN_OR_RETURN(
      std::unique_ptr<GgufImageBuilder> image,
      GgufImageBuilder::Create(
          absl::Span<const uint8_t>(reinterpret_cast<const uint8_t*>(header.data()), header.size()),
          writer->file_size(), path));
  uint64_t offset = 0;
  absl::Status write_status;
  RETURN_IF_ERROR(writer->Stream(
      [&](const void* p, size_t n) {
        if (write_status.ok() && n > 0) {
          write_status =
              image->Write(offset, absl::Span<const uint8_t>(static_cast<const uint8_t*>(p), n));
        }
        offset += n;
      },
      progress));
  RETURN_IF_ERROR(write_status);
  return image->Finish();
}

}  // namespace shardlm
