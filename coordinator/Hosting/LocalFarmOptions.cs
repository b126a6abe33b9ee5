using System.ComponentModel.DataAnnotations;

namespace Farm.Coordinator.Hosting;

/// <summary>
/// The local farm (<c>Farm:Local</c>): a coordinator and a worker in one resident process for one machine's user, as
/// dockerd or buildkitd. Enabling it chooses the local adapters of the same composition the cluster uses: the
/// in-memory bus, localhost clustering with memory grain storage, the file action cache, and the local image store's
/// OCI layout as the blob store; the API listens on a unix socket instead of TCP.
/// </summary>
public sealed class LocalFarmOptions
{
    public const string Section = "Farm:Local";

    /// <summary>Run as the local farm daemon.</summary>
    public bool Enabled { get; set; }

    /// <summary>Everything on disk: the image store, the action cache, the worker's layers, the socket and the log.</summary>
    [Required]
    public string StateDirectory { get; set; } = Farm.Oci.Images.LocalImageStore.DefaultStateDirectory();

    /// <summary>The API's unix socket; default <c>farmd.sock</c> in <see cref="StateDirectory"/>.</summary>
    public string? Socket { get; set; }

    /// <summary>
    /// A group whose members may use the socket too (mode 0660 instead of 0600). Being able to use the socket means
    /// being able to run builds as root on this machine: grant it as you would the docker group.
    /// </summary>
    public string? SocketGroup { get; set; }

    /// <summary>The daemon stops after this long with no build running and no request; zero keeps it running.</summary>
    [Range(typeof(TimeSpan), "00:00:00", "365.00:00:00")]
    public TimeSpan IdleTimeout { get; set; } = TimeSpan.FromMinutes(30);

    /// <summary>The worker's job slots; default one per core.</summary>
    [Range(0, 256)]
    public int Slots { get; set; }

    public string SocketPath => Socket is { Length: > 0 } socket ? socket : Path.Combine(StateDirectory, "farmd.sock");

    public string LogPath => Path.Combine(StateDirectory, "farmd.log");
}
