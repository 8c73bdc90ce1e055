// Package convert turns a single-file checkpoint into a Diffusers folder, as
// diffusers' from_single_file followed by save_pretrained would, without
// loading the model: every output tensor is a byte range of the checkpoint
// (or a few of them), the rare real transform (a transpose) streamed in
// bounded memory.
//
// # Types
//
//   - sd15, sd15-inpaint: Stable Diffusion 1.x in the original layout
//     (model.diffusion_model.*, first_stage_model.*,
//     cond_stage_model.transformer.*): a StableDiffusionPipeline or
//     StableDiffusionInpaintPipeline folder (unet, vae, text_encoder,
//     tokenizer, scheduler, feature_extractor).
//   - sdxl: SDXL base (conditioner.embedders.0/1.*): a
//     StableDiffusionXLPipeline folder, the OpenCLIP ViT-bigG text encoder's
//     fused q/k/v split by rows and its text_projection transposed.
//   - sd2, sd2-inpaint: Stable Diffusion 2.x (a 1024-wide cross-attention,
//     cond_stage_model.model.*: OpenCLIP ViT-H/14): a StableDiffusionPipeline
//     or StableDiffusionInpaintPipeline folder, the text encoder a
//     CLIPTextModel with its fused q/k/v split by rows and its last layer,
//     text_projection and logit_scale dropped (SD_2_TEXT_ENCODER_KEYS_TO_IGNORE).
//     Its configs are read from the Hub (stabilityai/stable-diffusion-2-1,
//     v-prediction at 768 px, as diffusers does; the weights cannot tell a
//     512 px epsilon model from it, which needs Options.ConfigFrom).
//   - sdxl-inpaint: SDXL inpainting (a 9-channel conv_in): converted as
//     sdxl, into a StableDiffusionXLInpaintPipeline folder with the configs
//     of diffusers/stable-diffusion-xl-1.0-inpainting-0.1 from the Hub.
//   - sdxl-refiner: the SDXL refiner (conditioner.embedders.0.model.*:
//     OpenCLIP ViT-bigG, its only text encoder): a
//     StableDiffusionXLImg2ImgPipeline folder, that encoder written as
//     text_encoder_2 (q/k/v split, text_projection transposed), with the
//     configs of stabilityai/stable-diffusion-xl-refiner-1.0 from the Hub.
//   - sd3, sd35: an SD 3 or 3.5 transformer (joint_blocks.*, with or
//     without "model.diffusion_model."): an SD3Transformer2DModel folder,
//     its fused q/k/v split by rows and the last block's context
//     modulation and the final modulation swapped, as
//     convert_sd3_transformer_checkpoint_to_diffusers does; a bundled VAE
//     or text encoders are dropped. Its config comes from the (gated) Hub
//     repositories diffusers names: stabilityai/stable-diffusion-3-medium-diffusers,
//     stabilityai/stable-diffusion-3.5-large or -medium (chosen by the
//     checkpoint's depth).
//   - flux-dev, flux-schnell: a FLUX.1 transformer (double_blocks.*,
//     single_blocks.*, with or without "model.diffusion_model."): a
//     FluxTransformer2DModel folder (config.json and weights), its fused
//     projections split by rows, its final modulation's halves swapped.
//   - flux-fill, flux-depth: FLUX.1 Fill (384 input channels) and Depth or
//     Canny (128): as flux-dev, the config's in_channels theirs and
//     out_channels 64.
//
// Configs and tokenizers of the reference repositories are embedded
// (configs/*, with their provenance), so nothing is downloaded. With
// Options.ConfigFrom (modelpub convert --config-from REPO), or for a type
// without embedded configs (NeedsConfigs; DefaultConfigRepo is the
// repository diffusers takes them from), FetchConfigs reads
// model_index.json and each component's configs, scheduler config and
// tokenizer files from a Diffusers repository on the Hub through
// core/hub — never its weights — with the user's token when there is one,
// and says so when the repository is gated.
//
// # Steps
//
//   - OpenCheckpoint reads the checkpoint's header (safetensors) or its
//     pickle (.ckpt, .pt, .bin, through core/torchbin's allow-listed
//     loader; nothing is executed). Tensors nested under "state_dict" are
//     unwrapped as diffusers does.
//   - Detect names the architecture from key names and shapes, in the order
//     of diffusers' infer_diffusers_model_type, and says why. A layout it
//     does not recognise is refused with the signature keys it looked for.
//   - Build plans the output: each tensor renamed as diffusers'
//     convert_ldm_unet_checkpoint, convert_ldm_vae_checkpoint and
//     convert_ldm_clip_checkpoint rename it; the VAE's mid-block attention
//     1×1 convolution weights reshaped to linear ones (metadata only: the
//     bytes are the same); every key diffusers drops (EMA copies, the noise
//     schedule buffers, CLIP's position_ids) listed with the reason. The
//     result must be exactly the tensor set of the diffusers models the
//     configs describe: a missing tensor, or one that maps to no diffusers
//     name, is an error naming it.
//   - Convert writes the folder through a staging folder beside the
//     destination (weights with core/tensors' writer, sharded and named as
//     save_pretrained does; the embedded configs and tokenizer files), then
//     checks it with pipeline.Validate and Verify, writes its model card
//     (README.md: core/card's generated card with a Source section naming
//     the checkpoint's file, size and sha256, hashed while the rest is
//     written), and only then renames it into place. A failure or
//     cancellation leaves nothing behind; the checkpoint is only read.
//   - Verify proves a folder holds exactly the mapped checkpoint: every
//     tensor's name, dtype and shape as planned and its bytes equal to the
//     source's (or to their exact conversion, for a --dtype or a variant),
//     re-reading both files.
//
// Tensors keep the checkpoint's dtype (diffusers upcasts to float32 unless
// asked); Options.DType converts the main weights and Options.Variant adds
// an fp16 or bf16 variant beside them.
package convert
