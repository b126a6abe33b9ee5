using System.Security.Cryptography;
using System.Text;
using Farm.Cli.Local;
using Farm.Contracts;
using Farm.Oci.Images;

namespace Farm.Cli.Build;

/// <summary>
/// <c>--build-context NAME=oci-layout://PATH[@sha256:DIGEST|:TAG]</c> (buildx's form): the image of an OCI image layout
/// directory as a named context, for <c>FROM NAME</c> and <c>COPY --from=NAME</c>. The local farm reads base images
/// from its image store before any registry, so the image is loaded there (blobs verified) under a name of this path
/// and selector, and the context becomes that image (as <c>docker-image://</c>): the build pins its manifest digest as
/// any base image's. A remote farm cannot read this machine's directory, and is refused (FARM1221).
/// </summary>
internal static class OciLayoutContexts
{
    /// <summary>The registry part of the names layouts are loaded under: never a registry anyone can reach.</summary>
    public const string NamePrefix = "oci-layout.invalid/";

    /// <summary><paramref name="settings"/> with every oci-layout context loaded and named as an image context.</summary>
    /// <exception cref="NamedContextException">A remote farm, or a directory that is not a usable layout (FARM1221).</exception>
    public static async Task<BuildSettings> LoadAsync(BuildSettings settings, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(settings);
        var layouts = settings.NamedContexts.Where(c => c.Kind == NamedContextKind.OciLayout).ToList();
        if (layouts.Count == 0)
        {
            return settings;
        }

        if (settings.FarmUrl is not null)
        {
            RefuseRemote(layouts[0]);
        }

        using var store = await LocalImageStore.OpenAsync(new LocalDaemon().StateDirectory, cancellationToken).ConfigureAwait(false);
        var contexts = new List<NamedContextSpec>();
        foreach (var context in settings.NamedContexts)
        {
            if (context.Kind != NamedContextKind.OciLayout)
            {
                contexts.Add(context);
                continue;
            }

            var path = Path.GetFullPath(context.Value);
            var name = NamePrefix + Sanitize(context.Name) + ":" + Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(path + "@" + context.Select)))[..16];
            try
            {
                await store.LoadLayoutAsync(path, context.Select, name, cancellationToken).ConfigureAwait(false);
            }
            catch (Exception e) when (e is InvalidImageArchiveException or IOException or UnauthorizedAccessException or Farm.Oci.OciLayoutException or Farm.Oci.DigestMismatchException)
            {
                throw new NamedContextException(context.Name, $"oci-layout://{context.Value}{(context.Select is null ? string.Empty : "@" + context.Select)}: {e.Message}");
            }

            contexts.Add(new NamedContextSpec(context.Name, NamedContextKind.Image, name, null));
        }

        var options = settings.Options ?? new SubmitBuildOptions();
        return settings with
        {
            NamedContexts = contexts,
            Options = options with
            {
                NamedContexts = [.. contexts.Where(c => c.Kind == NamedContextKind.Image).Select(c => new NamedContext { Name = c.Name, Image = c.Value })],
            },
        };
    }

    /// <summary>A submission to a remote farm or its queue with an oci-layout context: refused.</summary>
    /// <exception cref="NamedContextException">Always (FARM1221).</exception>
    public static void RefuseRemote(NamedContextSpec layout)
    {
        ArgumentNullException.ThrowIfNull(layout);
        throw new NamedContextException(layout.Name, $"oci-layout://{layout.Value} is a directory of this machine, which a remote farm cannot read; push the image (skopeo copy oci:{layout.Value} docker://REGISTRY/REPO:TAG) and name it with docker-image://, or build on the local farm");
    }

    private static string Sanitize(string name)
    {
        var text = new string([.. name.ToLowerInvariant().Select(c => char.IsAsciiLetterOrDigit(c) || c is '.' or '_' or '-' ? c : '-')]).Trim('.', '_', '-');
        return text.Length == 0 ? "context" : text;
    }
}
