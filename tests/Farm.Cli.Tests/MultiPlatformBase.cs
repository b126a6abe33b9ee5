using Farm.Oci;
using Farm.Oci.Registry;
using Farm.Testing;

namespace Farm.Cli.Tests;

/// <summary>The two-platform base of the multi-platform tests, made offline and pushed as one index.</summary>
internal static class MultiPlatformBase
{
    /// <summary>
    /// Pushes a busybox index (linux/amd64 from the host's busybox-static, linux/arm64 from Debian's
    /// busybox-static:arm64) to the anonymous test registry; returns its reference.
    /// </summary>
    public static async Task<string> PushAsync(Func<string[], Task<CliProcess.Result>> farm, string directory)
    {
        await TestRegistries.EnsureAnsweringAsync(TestRegistries.Anonymous);
        var repository = $"t{Guid.NewGuid():N}/busybox";
        var armTar = Path.Combine(directory, "busybox-arm64.tar");
        await Tool.RunAsync(Path.Combine(RepoPaths.RepoRoot, "examples", "base", "busybox.sh"), "--platform", "linux/arm64", "--tar-only", armTar);
        var amdTar = BuildFixture.BusyboxRootfs(directory);
        foreach (var (arch, tar) in new[] { ("amd64", amdTar), ("arm64", armTar) })
        {
            var name = $"{TestRegistries.Anonymous}/{repository}:{arch}";
            Ok(await farm(["import", "--platform", "linux/" + arch, "-c", "CMD [\"sh\"]", tar, name]));
            Ok(await farm(["push", name]));
        }

        using var client = new RegistryClient(TestRegistries.Anonymous);
        var manifests = new List<Descriptor>();
        foreach (var arch in new[] { "amd64", "arm64" })
        {
            var manifest = await client.GetManifestAsync(repository, arch, CancellationToken.None);
            manifests.Add(manifest.ToDescriptor() with { Platform = new Platform { Os = "linux", Architecture = arch } });
        }

        var index = new ImageIndex { Manifests = manifests };
        await client.PushManifestAsync(repository, "multi", OciJson.Serialize(index), MediaTypes.OciIndex, CancellationToken.None);
        return $"{TestRegistries.Anonymous}/{repository}:multi";
    }

    private static void Ok(CliProcess.Result result) => Assert.True(result.ExitCode == 0, $"farm exited {result.ExitCode}: {result.Stderr}");
}
