// Package pipeline will open, plan, save and validate Diffusers model
// folders: model_index.json, components, configs and weights. It streams
// tensors through core/tensors and never talks to the network.
package pipeline
