using System.Text.Json.Nodes;
using Farm.Contracts;
using Farm.Dockerfile.Graph;
using Farm.Oci;

namespace Farm.Coordinator.Assembly;

/// <summary>
/// Turns a stage's base image, built layers and config changes into an image config and manifest: the base
/// config is cloned (fields Farm does not model survive), the Dockerfile's config fields are written, the new
/// layers are appended to <c>rootfs.diff_ids</c> and one history entry is added per step.
/// </summary>
/// <remarks>
/// <para>Config: https://github.com/opencontainers/image-spec/blob/main/config.md. Healthcheck, OnBuild and Shell are
/// Docker extensions: https://github.com/moby/docker-image-spec/blob/main/spec.md (v1.3 image JSON).</para>
/// <para>Deterministic: maps are written in ordinal key order (as Go's encoding/json does) and every time comes from
/// the request, so the same request gives the same config and manifest digests.</para>
/// </remarks>
public sealed class ImageAssembler(TimeProvider? time = null)
{
    private readonly TimeProvider _time = time ?? TimeProvider.System;

    public AssembledImage Assemble(AssemblyRequest request)
    {
        ArgumentNullException.ThrowIfNull(request);
        var baseImage = request.Base;
        var config = baseImage.Config.Clone();
        if (config.DiffIds.Count != baseImage.Layers.Count)
        {
            throw new ImageAssemblyException(
                $"The base image lists {baseImage.Layers.Count} layers but its config has {config.DiffIds.Count} diff_ids; the base manifest and config do not belong together. Pull the base again.");
        }

        // BuildKit's dates: SOURCE_DATE_EPOCH for everything when given; otherwise a layer step is dated by when its
        // layer was built (a cached one by when it was first built), a config-only step by the layer step before it
        // (before the first one: by that first one), and the config by its last history entry. So a rebuild that hits
        // the cache for every step gives the same image digest, and a build's image is dated by its build.
        var stepTimes = request.Created is { } epoch
            ? request.Steps.Select(_ => epoch.ToUniversalTime()).ToList()
            : StepTimes(request.Steps, config.History.LastOrDefault(h => h.Created is not null)?.Created ?? _time.GetUtcNow());
        var created = stepTimes.Count > 0 ? stepTimes[^1] : (request.Created ?? config.Created ?? _time.GetUtcNow()).ToUniversalTime();
        if (request.ConfigIncludesBase)
        {
            ReplaceFields(config, request.Config);
        }
        else
        {
            MergeFields(config, request.Config);
        }

        var labels = new SortedDictionary<string, string>(config.Labels.ToDictionary(), StringComparer.Ordinal);
        foreach (var (key, value) in request.BuildLabels)
        {
            labels[key] = value;
        }

        WriteMap(config.Config, "Labels", labels.Select(l => (l.Key, (JsonNode?)l.Value)));
        if (request.Config.Author is { } author)
        {
            config.Author = author;
        }

        var layers = new List<Descriptor>(baseImage.Layers);
        foreach (var (step, stepTime) in request.Steps.Zip(stepTimes))
        {
            var history = new HistoryEntry { Created = stepTime, CreatedBy = step.CreatedBy, Comment = BuildKitHistory.Comment };
            if (step.Layer is null)
            {
                config.AddHistory(history with { EmptyLayer = true });
                continue;
            }

            if (!step.IsLayerStep)
            {
                throw new ImageAssemblyException($"Step '{step.CreatedBy}' changes only the config but was given layer {step.Layer.Digest}; pass layers only for RUN, COPY, ADD and WORKDIR steps.");
            }

            var (descriptor, diffId) = ToDescriptor(step.Layer, step.CreatedBy);
            layers.Add(descriptor);
            config.AddLayer(diffId, history);
        }

        config.Created = created;
        var docker = request.Format == ImageFormat.Docker;
        if (docker && layers.FirstOrDefault(l => MediaTypes.CompressionOf(l.MediaType) == LayerCompression.Zstd) is { } zstd)
        {
            throw new UnsupportedLayerFormatException($"Layer {zstd.Digest} is zstd-compressed, which Docker v2s2 manifests cannot describe. Build with gzip layers, or push in the OCI format.");
        }

        var configBytes = config.ToBytes();
        var configDescriptor = new Descriptor
        {
            MediaType = docker ? MediaTypes.DockerConfig : MediaTypes.OciConfig,
            Digest = Digest.Sha256(configBytes),
            Size = configBytes.Length,
        };
        var manifest = new ImageManifest { Config = configDescriptor, Layers = layers };
        manifest = docker ? manifest.ToDocker() : manifest.ToOci();
        var manifestBytes = OciJson.Serialize(manifest);
        return new AssembledImage
        {
            Config = config,
            ConfigBytes = configBytes,
            Manifest = manifest,
            ManifestBytes = manifestBytes,
            ManifestDescriptor = new Descriptor { MediaType = manifest.MediaType!, Digest = Digest.Sha256(manifestBytes), Size = manifestBytes.Length },
        };
    }

    /// <summary>
    /// Each step's history time without SOURCE_DATE_EPOCH: its layer's build time, else the time of the layer step before
    /// it, else the first layer step's; <paramref name="fallback"/> (the base's last date, or now) when no step has one.
    /// </summary>
    private static List<DateTimeOffset> StepTimes(IReadOnlyList<AssemblyStep> steps, DateTimeOffset fallback)
    {
        var current = (steps.FirstOrDefault(s => s.Created is not null)?.Created ?? fallback).ToUniversalTime();
        var times = new List<DateTimeOffset>(steps.Count);
        foreach (var step in steps)
        {
            if (step.Created is { } built)
            {
                current = built.ToUniversalTime();
            }

            times.Add(current);
        }

        return times;
    }

    /// <summary>
    /// Docker's HealthConfig as the image JSON stores it: durations in nanoseconds, zero values left out (Go's
    /// <c>omitempty</c>). https://github.com/moby/docker-image-spec/blob/main/spec.md
    /// </summary>
    public static JsonObject HealthcheckJson(HealthcheckConfig healthcheck)
    {
        ArgumentNullException.ThrowIfNull(healthcheck);
        var o = new JsonObject { ["Test"] = new JsonArray([.. healthcheck.Test.Select(t => (JsonNode?)t)]) };
        AddDuration(o, "Interval", healthcheck.Interval);
        AddDuration(o, "Timeout", healthcheck.Timeout);
        AddDuration(o, "StartPeriod", healthcheck.StartPeriod);
        AddDuration(o, "StartInterval", healthcheck.StartInterval);
        if (healthcheck.Retries is > 0 and var retries)
        {
            o["Retries"] = retries;
        }

        return o;
    }

    private static void AddDuration(JsonObject o, string name, TimeSpan? value)
    {
        if (value is { } v && v > TimeSpan.Zero)
        {
            // TimeSpan ticks are 100 ns; Go durations are nanoseconds.
            o[name] = v.Ticks * 100;
        }
    }

    /// <summary>The stage config holds the base values already: each field is written as the stage has it.</summary>
    private static void ReplaceFields(ImageConfig config, StageImageConfig stage)
    {
        config.Env = stage.Env;
        config.Cmd = stage.Cmd;
        config.Entrypoint = stage.Entrypoint;
        config.WorkingDir = stage.WorkingDir;
        config.User = stage.User;
        config.StopSignal = stage.StopSignal;
        WriteMap(config.Config, "ExposedPorts", stage.ExposedPorts.Order(StringComparer.Ordinal).Select(p => (p, (JsonNode?)new JsonObject())));
        WriteMap(config.Config, "Volumes", stage.Volumes.Order(StringComparer.Ordinal).Select(v => (v, (JsonNode?)new JsonObject())));
        WriteMap(config.Config, "Labels", stage.Labels.OrderBy(l => l.Key, StringComparer.Ordinal).Select(l => (l.Key, (JsonNode?)l.Value)));
        SetOrRemove(config.Config, "Healthcheck", stage.Healthcheck is null ? null : HealthcheckJson(stage.Healthcheck));
        SetOrRemove(config.Config, "Shell", Strings(stage.Shell));
        SetOrRemove(config.Config, "OnBuild", stage.OnBuild.Count == 0 ? null : Strings(stage.OnBuild));
    }

    /// <summary>The stage config holds only what the stage's instructions set: it is laid over the base config.</summary>
    private static void MergeFields(ImageConfig config, StageImageConfig stage)
    {
        foreach (var entry in stage.Env)
        {
            var eq = entry.IndexOf('=', StringComparison.Ordinal);
            config.SetEnv(eq < 0 ? entry : entry[..eq], eq < 0 ? string.Empty : entry[(eq + 1)..]);
        }

        if (stage.Entrypoint is not null)
        {
            config.Entrypoint = stage.Entrypoint;
            config.Cmd = stage.Cmd;
        }
        else if (stage.Cmd is not null)
        {
            config.Cmd = stage.Cmd;
        }

        config.WorkingDir = stage.WorkingDir ?? config.WorkingDir;
        config.User = stage.User ?? config.User;
        config.StopSignal = stage.StopSignal ?? config.StopSignal;
        WriteMap(config.Config, "ExposedPorts", config.ExposedPorts.Union(stage.ExposedPorts).Order(StringComparer.Ordinal).Select(p => (p, (JsonNode?)new JsonObject())));
        WriteMap(config.Config, "Volumes", config.Volumes.Union(stage.Volumes).Order(StringComparer.Ordinal).Select(v => (v, (JsonNode?)new JsonObject())));
        var labels = new SortedDictionary<string, string>(config.Labels.ToDictionary(), StringComparer.Ordinal);
        foreach (var (key, value) in stage.Labels)
        {
            labels[key] = value;
        }

        WriteMap(config.Config, "Labels", labels.Select(l => (l.Key, (JsonNode?)l.Value)));
        if (stage.Healthcheck is not null)
        {
            config.Config["Healthcheck"] = HealthcheckJson(stage.Healthcheck);
        }

        if (stage.Shell is not null)
        {
            config.Config["Shell"] = Strings(stage.Shell);
        }

        // Triggers of the base ran in this build (Docker clears them in the child), so only the stage's remain.
        SetOrRemove(config.Config, "OnBuild", stage.OnBuild.Count == 0 ? null : Strings(stage.OnBuild));
    }

    private static (Descriptor Descriptor, Digest DiffId) ToDescriptor(LayerRef layer, string step)
    {
        if (!Digest.TryParse(layer.Digest, out var digest) || !Digest.TryParse(layer.DiffId, out var diffId))
        {
            throw new ImageAssemblyException($"The layer of step '{step}' has an invalid digest ('{layer.Digest}') or diff_id ('{layer.DiffId}'); the worker's report is corrupt. Rebuild the step.");
        }

        if (!MediaTypes.IsLayer(layer.MediaType) || layer.Size < 0)
        {
            throw new ImageAssemblyException($"The layer of step '{step}' has media type '{layer.MediaType}' and size {layer.Size}, which is not an image layer. Rebuild the step.");
        }

        return (new Descriptor { MediaType = layer.MediaType, Digest = digest, Size = layer.Size }, diffId);
    }

    /// <summary>Writes a Go-style map (an object) in the given order, or removes it when empty.</summary>
    private static void WriteMap(JsonObject target, string name, IEnumerable<(string Key, JsonNode? Value)> entries)
    {
        var o = new JsonObject();
        foreach (var (key, value) in entries)
        {
            o[key] = value;
        }

        SetOrRemove(target, name, o.Count == 0 ? null : o);
    }

    private static JsonArray? Strings(IReadOnlyList<string>? values) =>
        values is null ? null : new JsonArray([.. values.Select(v => (JsonNode?)v)]);

    private static void SetOrRemove(JsonObject target, string name, JsonNode? value)
    {
        if (value is null)
        {
            target.Remove(name);
        }
        else
        {
            target[name] = value;
        }
    }
}
