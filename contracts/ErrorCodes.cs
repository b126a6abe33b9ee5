namespace Farm.Contracts;

/// <summary>
/// Every stable error code Farm reports, each defined once. A <see cref="FarmException"/> message starts with one
/// (<c>FARM1203: ...</c>); scripts, tests and issue reports refer to it, so a code is never reused for another
/// meaning and never renumbered lightly. docs/errors.md lists the same codes for users.
/// </summary>
/// <remarks>
/// Ranges: FARM10xx Dockerfile syntax, FARM11xx variable expansion and <c>.dockerignore</c>, FARM12xx build context
/// and COPY/ADD sources, FARM13xx stages and the build graph; FARM20xx OCI content, FARM21xx layer tars, FARM22xx
/// registries and blob stores; FARM30xx worker and sandbox, FARM31xx containers (<c>farm run</c>/<c>exec</c>);
/// FARM40xx coordinator cache and dispatch, FARM41xx image assembly and outputs, FARM42xx builds and the HTTP API;
/// FARM50xx local image store, FARM501x and FARM505x the CLI. Exception types are named in each code's summary;
/// they live in the project of their area.
/// </remarks>
public static class FarmErrorCodes
{
    // FARM10xx: Dockerfile syntax (DockerfileSyntaxException, Farm.Dockerfile.Parsing).

    /// <summary>The Dockerfile has no instruction (empty, blank or comments only).</summary>
    public const string NoInstructions = "FARM1001";

    /// <summary>A parser directive has a value the parser does not accept (e.g. <c># escape=x</c>).</summary>
    public const string InvalidDirective = "FARM1002";

    /// <summary>The same parser directive appears twice.</summary>
    public const string DuplicateDirective = "FARM1003";

    /// <summary>A JSON array in an instruction holds something other than strings.</summary>
    public const string JsonNotStringArray = "FARM1004";

    /// <summary>ENV or LABEL names a key without a value.</summary>
    public const string MissingValue = "FARM1005";

    /// <summary>ENV or LABEL in <c>key=value</c> form has a word without <c>=</c>.</summary>
    public const string MissingEquals = "FARM1006";

    /// <summary>A heredoc body never reaches its terminator line.</summary>
    public const string UnterminatedHeredoc = "FARM1007";

    /// <summary>The instruction keyword is not a Dockerfile instruction.</summary>
    public const string UnknownInstruction = "FARM1010";

    /// <summary>An instruction has a <c>--flag</c> it does not take.</summary>
    public const string UnknownFlag = "FARM1011";

    /// <summary>An instruction's flag is missing its value, has a bad value, or is repeated.</summary>
    public const string InvalidFlag = "FARM1012";

    /// <summary>An instruction has too few or too many arguments, or arguments of the wrong shape.</summary>
    public const string InvalidArguments = "FARM1013";

    /// <summary>An instruction that requires the JSON (exec) form got something else.</summary>
    public const string JsonRequired = "FARM1014";

    /// <summary>ONBUILD wraps an instruction it may not trigger.</summary>
    public const string InvalidOnbuild = "FARM1015";

    /// <summary>A HEALTHCHECK duration or retry count is not valid.</summary>
    public const string InvalidHealthcheck = "FARM1016";

    /// <summary>A stage name after <c>FROM … AS</c> is not valid.</summary>
    public const string InvalidStageName = "FARM1017";

    // FARM11xx: variable expansion (Farm.Dockerfile.Expansion) and .dockerignore (Farm.Dockerfile.Ignore).

    /// <summary><c>${NAME?message}</c> met an unset (or, with <c>:?</c>, empty) variable (<c>RequiredVariableException</c>).</summary>
    public const string RequiredVariable = "FARM1101";

    /// <summary>A word has malformed substitution syntax: unterminated quote or <c>${</c>, <c>${}</c>, unknown modifier (<c>ExpansionSyntaxException</c>).</summary>
    public const string ExpansionSyntax = "FARM1102";

    /// <summary>The pattern of <c>${VAR#pat}</c>, <c>${VAR%pat}</c> or <c>${VAR/pat/repl}</c> is invalid (<c>SubstitutionPatternException</c>).</summary>
    public const string SubstitutionPattern = "FARM1103";

    /// <summary>The variables of one word expand to more than a mebibyte, as ARGs that each double the last do (<c>ExpansionTooLongException</c>).</summary>
    public const string ExpansionTooLong = "FARM1104";

    /// <summary>A <c>.dockerignore</c> pattern cannot be compiled (<c>InvalidIgnorePatternException</c>).</summary>
    public const string InvalidIgnorePattern = "FARM1110";

    // FARM12xx: build context and COPY/ADD sources (BuildContextException in Farm.Dockerfile.Context; Farm.Worker.Copy).

    /// <summary>The build context directory does not exist or is not a directory (<c>BuildContextException</c>).</summary>
    public const string ContextNotFound = "FARM1201";

    /// <summary>A directory of the build context cannot be read (<c>BuildContextException</c>).</summary>
    public const string ContextUnreadable = "FARM1202";

    /// <summary>
    /// A COPY/ADD source resolves outside its source root (<c>../x</c>, a symlink leaving the context, a symlink loop)
    /// (<c>BuildContextException</c> when planning, <c>SourceOutsideContextException</c> on the worker).
    /// </summary>
    public const string SourceOutsideContext = "FARM1203";

    /// <summary>A COPY/ADD source or wildcard matched no file (<c>BuildContextException</c> when planning, <c>CopySourceNotFoundException</c> on the worker).</summary>
    public const string SourceNotFound = "FARM1204";

    /// <summary>The COPY/ADD destination cannot take what is copied (<c>CopyDestinationException</c>).</summary>
    public const string CopyDestination = "FARM1205";

    /// <summary>An option of COPY/ADD (<c>--chown</c>, <c>--chmod</c>, <c>--checksum</c>, <c>--exclude</c>, a source pattern) is invalid (<c>CopyOptionException</c>, <c>BuildContextException</c>).</summary>
    public const string CopyOption = "FARM1206";

    /// <summary>A downloaded ADD source does not have the digest given with <c>--checksum</c> (<c>ChecksumMismatchException</c>).</summary>
    public const string ChecksumMismatch = "FARM1207";

    /// <summary>An archive given to ADD has an entry that would land outside the destination (<c>UnsafeArchiveException</c>).</summary>
    public const string UnsafeArchive = "FARM1208";

    /// <summary>A remote ADD source could not be downloaded (<c>RemoteSourceException</c>).</summary>
    public const string RemoteSource = "FARM1209";

    /// <summary>A source holds something COPY/ADD cannot reproduce: a corrupt archive, an unsupported tar entry (<c>UnsupportedSourceException</c>).</summary>
    public const string UnsupportedSource = "FARM1210";

    /// <summary>A file of the build context changed size while the context was packed (<c>BuildContextException</c>).</summary>
    public const string ContextChangedWhilePacked = "FARM1211";

    /// <summary>A submitted context index does not describe its context tar; nothing is built or cached (<c>ContextIndexMismatchException</c>).</summary>
    public const string ContextIndexMismatch = "FARM1212";

    /// <summary>A worker refused to fetch an ADD source (a URL, a git repository) from an address a build may not reach: this machine, the farm's services, link-local (<c>FetchRefusedException</c>).</summary>
    public const string FetchRefused = "FARM1213";

    /// <summary>An entry of a build context archive (a tar on standard input or from a URL) would land outside the context's root: an absolute path, <c>..</c>, or a path through a symbolic link (<c>ContextArchiveException</c>).</summary>
    public const string ContextArchiveEscape = "FARM1220";

    /// <summary>A named build context (<c>--build-context NAME=...</c>) cannot be used: its directory is missing, its <c>oci-layout://</c> directory is not a layout or lacks the image named, an <c>oci-layout://</c> context goes to a remote farm, or a <c>FROM</c> names a directory context (<c>NamedContextException</c>; <c>BuildGraphException</c> for the <c>FROM</c>).</summary>
    public const string NamedContextUnusable = "FARM1221";

    /// <summary>
    /// The ref of an <c>ADD</c> git source could not be resolved to a commit when the build was planned: no such branch
    /// or tag, the repository unreachable or refused, an ssh remote on a farm (<c>GitSourceUnavailableException</c>).
    /// </summary>
    public const string GitSourceUnavailable = "FARM1230";

    // FARM124x: build contexts a farm fetches from a URL (UrlContextException, Farm.Coordinator).

    /// <summary>The farm could not fetch a URL context: the host did not answer, answered with an HTTP error, or git could not fetch the repository (<c>UrlContextUnreachableException</c>).</summary>
    public const string UrlContextUnreachable = "FARM1240";

    /// <summary>A tarball URL context is neither a tar archive (plain, gzip, bzip2 or xz) nor a text Dockerfile (<c>UrlContextNotAnArchiveException</c>).</summary>
    public const string UrlContextNotAnArchive = "FARM1241";

    /// <summary>A tarball URL context is larger than the farm accepts (<c>Farm:Builds:UrlContexts:MaxBytes</c>) (<c>UrlContextTooLargeException</c>).</summary>
    public const string UrlContextTooLarge = "FARM1242";

    /// <summary>An <c>ssh://</c> or <c>git@</c> context went to a farm, which never fetches with its own ssh keys (<c>UrlContextSshRefusedException</c>).</summary>
    public const string UrlContextSshRefused = "FARM1243";

    /// <summary>The Dockerfile a submission names is not in the context the farm fetched (<c>UrlContextDockerfileMissingException</c>).</summary>
    public const string UrlContextDockerfileMissing = "FARM1244";

    // FARM13xx: stages and the build graph (BuildGraphException, Farm.Dockerfile.Graph).

    /// <summary><c>--target</c> names no stage.</summary>
    public const string UnknownTarget = "FARM1301";

    /// <summary>Two stages have the same name (compared case-insensitively).</summary>
    public const string DuplicateStageName = "FARM1302";

    /// <summary><c>COPY --from</c> names the stage it is in.</summary>
    public const string SelfReference = "FARM1303";

    /// <summary><c>COPY --from=N</c> with N not the index of an earlier stage.</summary>
    public const string InvalidStageIndex = "FARM1304";

    /// <summary><c>COPY --from=name</c> names a stage defined later in the file.</summary>
    public const string ForwardStageReference = "FARM1305";

    /// <summary><c>COPY --from</c> holds a variable; BuildKit does not expand it.</summary>
    public const string VariableInFrom = "FARM1306";

    /// <summary>The image of a FROM expands to nothing.</summary>
    public const string EmptyBaseName = "FARM1307";

    /// <summary>A <c>--platform</c> value that is not <c>os/arch[/variant]</c>.</summary>
    public const string InvalidPlatform = "FARM1308";

    /// <summary>An EXPOSE port that is not <c>port[/proto]</c> or <c>start-end[/proto]</c>, or EXPOSE lines that name more than 262,144 ports in all.</summary>
    public const string InvalidPort = "FARM1309";

    /// <summary>A VOLUME path expands to an empty string.</summary>
    public const string EmptyVolume = "FARM1310";

    /// <summary>A word could not be expanded while the graph was built (bad substitution, <c>${X?}</c> on an unset X…).</summary>
    public const string ExpansionFailed = "FARM1311";

    /// <summary>The file has no FROM, or an instruction other than ARG comes before the first FROM.</summary>
    public const string NoStage = "FARM1312";

    /// <summary>The Dockerfile has more stages than a build may have (<c>BuildGraph.MaxStages</c>).</summary>
    public const string TooManyStages = "FARM1313";

    /// <summary>The build arg SOURCE_DATE_EPOCH is not a whole number of seconds since 1970 (<c>BuildGraphException</c>).</summary>
    public const string InvalidSourceDateEpoch = "FARM1320";

    /// <summary>
    /// An ONBUILD trigger of the base (stage or image) cannot run in the child: it is FROM, ONBUILD or MAINTAINER (which
    /// BuildKit refuses there too), or reads another stage or image (<c>--from</c>), which Farm does not build yet
    /// (<c>BuildGraphException</c> at the child's FROM).
    /// </summary>
    public const string OnbuildTriggerUnusable = "FARM1340";

    /// <summary>Warning: build args that no instruction of the build declared.</summary>
    public const string UnusedBuildArgs = "FARM1390";

    /// <summary>Warning: ONBUILD triggers of a base stage or image were recorded but not applied. No longer given: the triggers run (FARM1340 when one cannot).</summary>
    public const string OnbuildNotApplied = "FARM1391";

    // FARM20xx: OCI content (Farm.Oci).

    /// <summary>A digest string is not <c>sha256:</c>/<c>sha512:</c> with the right hex length (<c>InvalidDigestException</c>).</summary>
    public const string InvalidDigest = "FARM2001";

    /// <summary>Content did not hash to the digest it was fetched or stored under (<c>DigestMismatchException</c>).</summary>
    public const string DigestMismatch = "FARM2002";

    /// <summary>A manifest, index or config document could not be read (<c>InvalidManifestException</c>).</summary>
    public const string InvalidManifest = "FARM2003";

    // FARM21xx: layer tars (Farm.Oci.Layers).

    /// <summary>A layer entry's name climbs above the root with <c>..</c> (<c>LayerPathEscapeException</c>).</summary>
    public const string LayerPathEscape = "FARM2101";

    /// <summary>A layer entry has an absolute name (<c>LayerAbsolutePathException</c>).</summary>
    public const string LayerAbsolutePath = "FARM2102";

    /// <summary>A layer entry's path goes through a symbolic link that leads outside the root or loops (<c>LayerSymlinkTraversalException</c>).</summary>
    public const string LayerSymlinkTraversal = "FARM2103";

    /// <summary>A hard link entry points outside the root or at nothing there (<c>LayerHardlinkTargetException</c>).</summary>
    public const string LayerHardlinkTarget = "FARM2104";

    /// <summary>A layer holds a device node and devices were not allowed (<c>LayerDeviceNotAllowedException</c>).</summary>
    public const string LayerDeviceNotAllowed = "FARM2105";

    /// <summary>The bytes are not a tar archive Farm can read (<c>InvalidLayerTarException</c>).</summary>
    public const string InvalidLayerTar = "FARM2106";

    /// <summary>A layer's compression is not gzip, zstd or none, or the stream is corrupt (<c>LayerCompressionException</c>).</summary>
    public const string LayerCompression = "FARM2107";

    /// <summary>A file system call failed while a layer was applied or written (<c>LayerIoException</c>).</summary>
    public const string LayerIo = "FARM2108";

    /// <summary>An overlayfs upperdir uses redirect_dir or metacopy (<c>UnsupportedOverlayFeatureException</c>).</summary>
    public const string UnsupportedOverlayFeature = "FARM2109";

    /// <summary>Two entries of one layer conflict in a way that cannot be applied (<c>LayerEntryConflictException</c>).</summary>
    public const string LayerEntryConflict = "FARM2110";

    // FARM22xx: blob stores and registries (Farm.Oci.Stores, Farm.Oci.Registry). The worker retries a job that
    // failed with a FARM22xx code on another worker.

    /// <summary>The blob store does not hold a blob (<c>BlobNotFoundException</c>).</summary>
    public const string BlobNotFound = "FARM2201";

    /// <summary>An image reference could not be parsed (<c>InvalidImageReferenceException</c>).</summary>
    public const string InvalidImageReference = "FARM2202";

    /// <summary>The registry wants credentials that were not given, or refused them: HTTP 401 (<c>RegistryAuthenticationException</c>).</summary>
    public const string RegistryAuthentication = "FARM2210";

    /// <summary>The credentials do not allow the operation: HTTP 403 or a token without the scope (<c>RegistryAccessDeniedException</c>).</summary>
    public const string RegistryAccessDenied = "FARM2211";

    /// <summary>The manifest, tag or repository does not exist: HTTP 404 (<c>ManifestNotFoundException</c>).</summary>
    public const string ManifestNotFound = "FARM2212";

    /// <summary>The registry could not be reached, or answered 429/5xx after every retry (<c>RegistryUnavailableException</c>).</summary>
    public const string RegistryUnavailable = "FARM2213";

    /// <summary>The registry answered with an error Farm cannot recover from: another 4xx or a malformed answer (<c>RegistryRequestException</c>).</summary>
    public const string RegistryRequest = "FARM2214";

    /// <summary>The registry's TLS certificate is not trusted, or the handshake failed (<c>RegistryTlsException</c>).</summary>
    public const string RegistryTls = "FARM2215";

    /// <summary>The token server of a Bearer challenge failed or answered nonsense (<c>RegistryTokenException</c>).</summary>
    public const string RegistryToken = "FARM2216";

    /// <summary>The Docker client configuration (config.json) could not be read or written (<c>DockerConfigException</c>).</summary>
    public const string DockerConfig = "FARM2217";

    /// <summary>An image index has no manifest for the platform needed (<c>PlatformNotFoundException</c>).</summary>
    public const string PlatformNotFound = "FARM2218";

    /// <summary>A directory is not a usable OCI image layout, or a tag is missing from it (<c>OciLayoutException</c>).</summary>
    public const string OciLayout = "FARM2230";

    /// <summary>A blob store address is neither <c>registry://HOST/REPO</c> nor <c>oci-layout:/PATH</c> (<c>InvalidBlobStoreAddressException</c>).</summary>
    public const string InvalidBlobStoreAddress = "FARM2240";

    // FARM226x: --cache-to and --cache-from (Farm.Oci.Images.CacheSpec).

    /// <summary>A <c>--cache-to</c> or <c>--cache-from</c> value is malformed: not <c>key=value</c> fields, no <c>ref=</c>, a bad <c>mode=</c> or reference (<c>InvalidCacheOptionException</c>).</summary>
    public const string InvalidCacheOption = "FARM2260";

    /// <summary>A <c>--cache-to</c> or <c>--cache-from</c> names a cache type Farm does not support (only <c>type=registry</c>) (<c>UnsupportedCacheTypeException</c>).</summary>
    public const string UnsupportedCacheType = "FARM2261";

    // FARM30xx: worker and sandbox (Farm.Worker.Jobs, Farm.Containers.Sandbox).

    /// <summary>A job failed with an exception that carries no Farm code; reported by the worker in <c>LayerBuildFailed</c>.</summary>
    public const string WorkerUnexpected = "FARM3000";

    /// <summary>A USER names a user or group the image does not define (<c>UnknownUserException</c>).</summary>
    public const string UnknownUser = "FARM3001";

    /// <summary>A RUN command exited with a non-zero status (<c>RunFailedException</c>).</summary>
    public const string RunFailed = "FARM3002";

    /// <summary>runc itself failed: missing binary, bad bundle, a namespace or mount refused (<c>SandboxException</c>). Retried on another worker.</summary>
    public const string Sandbox = "FARM3003";

    /// <summary>An overlayfs snapshot could not be mounted or removed (<c>SnapshotException</c>). Retried on another worker.</summary>
    public const string Snapshot = "FARM3004";

    /// <summary>A path inside the image escapes or cannot be used, e.g. WORKDIR is a file (<c>RootfsPathException</c>).</summary>
    public const string RootfsPath = "FARM3005";

    /// <summary>
    /// A job was delivered to workers <c>Farm:Worker:MaxDeliveries</c> times and each time its worker stopped or died
    /// before reporting; it is failed instead of delivered again (a poison job must not loop forever).
    /// </summary>
    public const string DeliveriesExhausted = "FARM3006";

    /// <summary>FARM_RABBITMQ is not an AMQP URL (<c>InvalidRabbitMqUrlException</c>, Farm.Contracts).</summary>
    public const string InvalidRabbitMqUrl = "FARM3010";

    /// <summary>
    /// The CA file given for the TLS of RabbitMQ or Redis (<c>Farm:RabbitMq:CaPath</c>, <c>FARM_RABBITMQ_CA</c>,
    /// <c>Farm:Coordinator:RedisCaPath</c>) cannot be read or holds no PEM certificate (<c>ServiceCaUnreadableException</c>, Farm.Contracts).
    /// </summary>
    public const string ServiceCaUnreadable = "FARM3030";

    /// <summary>A RUN step was killed by the kernel for going over its memory limit (<c>StepMemoryLimitException</c>).</summary>
    public const string StepMemoryLimit = "FARM3020";

    /// <summary>A RUN step reached its limit on processes and was stopped, e.g. a fork bomb (<c>StepPidsLimitException</c>).</summary>
    public const string StepPidsLimit = "FARM3021";

    /// <summary>A RUN step ran longer than its time limit and was killed (<c>StepTimeoutException</c>).</summary>
    public const string StepTimeout = "FARM3022";

    /// <summary>A build asked for a step limit above the worker's cap (<c>StepLimitAboveCapException</c>).</summary>
    public const string StepLimitAboveCap = "FARM3023";

    /// <summary>
    /// The worker's health endpoint (<c>Farm:Worker:HealthPort</c>, <c>Farm:Worker:HealthAddress</c>) cannot listen: the
    /// port is taken or the address is not this machine's (<c>WorkerHealthEndpointException</c>, Farm.Worker).
    /// </summary>
    public const string WorkerHealthEndpoint = "FARM3050";

    // FARM31xx: containers of farm run/exec/commit (Farm.Containers).

    /// <summary>A name or id prefix matches no container (<c>NoSuchContainerException</c>).</summary>
    public const string NoSuchContainer = "FARM3100";

    /// <summary>An id prefix matches more than one container (<c>AmbiguousContainerException</c>).</summary>
    public const string AmbiguousContainer = "FARM3101";

    /// <summary><c>--name</c> is taken or not a valid container name (<c>ContainerNameException</c>).</summary>
    public const string ContainerName = "FARM3102";

    /// <summary>The container is not in the state the operation needs (<c>ContainerStateException</c>).</summary>
    public const string ContainerState = "FARM3103";

    /// <summary>A <c>-p</c> value is not <c>[IP:][HOST:]CONTAINER[/tcp|/udp]</c> (<c>InvalidPortMappingException</c>).</summary>
    public const string InvalidPortMapping = "FARM3104";

    /// <summary>The container's private network could not be set up (<c>ContainerNetworkException</c>).</summary>
    public const string ContainerNetwork = "FARM3105";

    /// <summary>The container could not be created, started, stopped or removed (<c>ContainerRuntimeException</c>).</summary>
    public const string ContainerRuntime = "FARM3106";

    /// <summary>A <c>-c</c> change of <c>farm import</c> or <c>farm commit</c> does not parse or is not one a change can carry (<c>InvalidConfigChangeException</c>).</summary>
    public const string InvalidConfigChange = "FARM3107";

    /// <summary>runc could not start the container's process (<c>ContainerStartException</c>).</summary>
    public const string ContainerStart = "FARM3108";

    /// <summary>The firewall that keeps RUN steps' private networks off the worker's machine and the farm's services could not be set up (<c>SandboxFirewallException</c>).</summary>
    public const string SandboxFirewall = "FARM3109";

    // FARM312x: RUN --mount on the worker (Farm.Worker.RunMounts).

    /// <summary>A <c>RUN --mount</c> could not be set up: its source is missing in what it binds, or a cache or tmpfs could not be made (<c>RunMountException</c>).</summary>
    public const string RunMountFailed = "FARM3120";

    /// <summary>A step mounts a build secret or SSH agent that the worker could not get for its build (<c>BuildSecretUnavailableException</c>).</summary>
    public const string BuildSecretUnavailable = "FARM3121";

    // FARM313x: platforms on the worker (Farm.Worker, docs/architecture.md "Platforms").

    /// <summary>
    /// A job reached a worker that does not run its platform (a coordinator that routes by platform sends it only to
    /// workers that do): the job fails instead of running the wrong programs (<c>PlatformNotRunException</c>).
    /// </summary>
    public const string PlatformNotRun = "FARM3130";

    /// <summary><c>Farm:Worker:Platforms</c> names something that is not a platform (<c>os/arch[/variant]</c>): the worker does not start.</summary>
    public const string InvalidWorkerPlatform = "FARM3131";
    // FARM314x: cache mounts across the farm on the worker (Farm.Worker.RunMounts).

    /// <summary>A step with a farm-wide cache mount could not reach the coordinators that hold its lease and snapshot pointer (<c>CacheMountCoordinationException</c>).</summary>
    public const string CacheMountCoordination = "FARM3140";

    // FARM40xx: coordinator action cache and job dispatch (Farm.Coordinator.Cache, Farm.Coordinator.Grains).

    /// <summary>A cache key is not <c>sha256:</c> and 64 lower-case hex digits (<c>InvalidCacheKeyException</c>).</summary>
    public const string InvalidCacheKey = "FARM4001";

    /// <summary>The action cache's backend (Redis, the state directory) failed (<c>ActionCacheUnavailableException</c>); builds go on uncached.</summary>
    public const string ActionCacheUnavailable = "FARM4002";

    /// <summary>An action-cache entry cannot be read; it is treated as a miss and replaced (<c>ActionCacheCorruptEntryException</c>).</summary>
    public const string ActionCacheCorruptEntry = "FARM4003";

    /// <summary>A layer grain could not publish a job to the workers' queue (a <c>JobFailure</c> of the grain).</summary>
    public const string DispatchFailed = "FARM4004";

    /// <summary>Every attempt of a job failed with a retryable fault (a <c>JobFailure</c> of the layer grain).</summary>
    public const string AttemptsExhausted = "FARM4005";

    /// <summary>No worker reported on a job within the job timeout (a <c>JobFailure</c> of the layer grain).</summary>
    public const string JobTimedOut = "FARM4006";

    /// <summary>A farm process's settings are invalid; the message names the section and the setting (<c>InvalidSettingsException</c>).</summary>
    public const string InvalidSettings = "FARM4010";

    // FARM41xx: image assembly, push and outputs (Farm.Coordinator.Assembly).

    /// <summary>The inputs of an image assembly do not fit together (<c>ImageAssemblyException</c>).</summary>
    public const string ImageAssembly = "FARM4101";

    /// <summary>A layer cannot be written in the requested manifest format, e.g. zstd in Docker v2s2 (<c>UnsupportedLayerFormatException</c>).</summary>
    public const string UnsupportedLayerFormat = "FARM4102";

    /// <summary>A push destination is not a usable <c>host[:port]/repository[:tag]</c> (<c>InvalidPushTargetException</c>).</summary>
    public const string InvalidPushTarget = "FARM4110";

    /// <summary>No blob source holds a blob the image needs (<c>BlobUnavailableException</c>).</summary>
    public const string BlobUnavailable = "FARM4111";

    /// <summary>An <c>--output</c> value is malformed or names an unknown exporter (<c>InvalidOutputException</c>).</summary>
    public const string InvalidOutput = "FARM4120";

    /// <summary>Writing an output failed, or a layer did not decompress to its diff_id (<c>OutputWriteException</c>).</summary>
    public const string OutputWrite = "FARM4121";

    // FARM42xx: builds and the coordinator's HTTP API (Farm.Coordinator.Builds, Farm.Coordinator.Api).

    /// <summary>A build failed with an exception that carries no Farm code, or the API failed unexpectedly (HTTP 500).</summary>
    public const string BuildInternal = "FARM4200";

    /// <summary>A layer step failed; the message names the step, a RUN's exit code and output tail (<c>BuildStepFailedException</c>).</summary>
    public const string BuildStepFailed = "FARM4201";

    /// <summary>A base image (or a <c>COPY --from</c> image) could not be pinned or copied into the cache store (<c>BaseImageUnavailableException</c>).</summary>
    public const string BaseImageUnavailable = "FARM4202";

    /// <summary>The context index a build names is missing from the cache store or unreadable (<c>ContextIndexUnavailableException</c>).</summary>
    public const string ContextIndexUnavailable = "FARM4203";

    /// <summary>The Dockerfile uses a feature Farm cannot build yet; refused before any job (<c>UnsupportedBuildFeatureException</c>).</summary>
    public const string UnsupportedBuildFeature = "FARM4204";

    /// <summary>No build with this id is known to the farm: HTTP 404 (<c>BuildNotFoundException</c>).</summary>
    public const string BuildNotFound = "FARM4210";

    /// <summary>A submission lacks what a build needs, or its body is malformed: HTTP 400 (<c>InvalidSubmissionException</c>).</summary>
    public const string InvalidSubmission = "FARM4211";

    /// <summary>The coordinator stopped while the build ran (<c>BuildAbandonedException</c>).</summary>
    public const string BuildAbandoned = "FARM4212";

    /// <summary>The build could not be recorded in its build grain (<c>BuildNotRecordedException</c>).</summary>
    public const string BuildNotRecorded = "FARM4213";

    /// <summary>A submission names a context directory or an output path to a coordinator that is not the local farm (<c>LocalOnlySubmissionException</c>).</summary>
    public const string LocalOnlySubmission = "FARM4214";

    /// <summary>The build was cancelled by its submitter (<c>BuildCancelledException</c>).</summary>
    public const string BuildCancelled = "FARM4215";

    /// <summary>
    /// The cluster cannot reach the build's state right now: the silo holding its grain died and is not declared dead
    /// yet, or Redis does not answer (<c>ClusterUnavailableException</c>); HTTP 503, worth retrying in seconds.
    /// </summary>
    public const string ClusterUnavailable = "FARM4216";

    /// <summary>
    /// A build uses or asks for an entitlement (<c>RUN --network=host</c>, <c>--allow network.host</c>) that it did not
    /// request or that the farm does not grant (<c>EntitlementNotGrantedException</c>).
    /// </summary>
    public const string EntitlementNotGranted = "FARM4220";

    /// <summary>The coordinator requires a bearer token and the request had none, or one it does not know: HTTP 401 (<c>UnauthenticatedException</c>).</summary>
    public const string Unauthenticated = "FARM4230";

    /// <summary>The token's role does not allow the request (a <c>read</c> token that submits or cancels): HTTP 403 (<c>NotPermittedException</c>).</summary>
    public const string NotPermitted = "FARM4231";

    /// <summary>
    /// The coordinator would serve its API on a non-loopback address with no tokens configured, or its auth or TLS
    /// settings are unusable (a missing tokens file, a malformed line, a certificate without its key); it does not
    /// start (<c>AuthSettingsException</c>).
    /// </summary>
    public const string AuthSettings = "FARM4232";

    /// <summary>A queued <c>SubmitBuild</c> came from an AMQP user that maps to no tenant, or carried no validated <c>user_id</c>, on a coordinator with auth: it never becomes a build (<c>SubmissionNotAuthorizedException</c>).</summary>
    public const string SubmissionNotAuthorized = "FARM4233";

    /// <summary>
    /// A registry refused a push or a base-image pull of a tenant's build: the tenant has no credentials for it on the
    /// farm (<c>Farm:Coordinator:Tenants:TENANT:RegistryAuthFile</c>), or its credentials or the ones passed with the
    /// build were refused or do not allow it; the farm's own credentials are never tried (<c>TenantRegistryRefusedException</c>).
    /// </summary>
    public const string TenantRegistryRefused = "FARM4240";

    /// <summary>
    /// A build submitted with registry credentials for this build only was resumed by another coordinator, which does
    /// not have them (they live only in the memory of the one that accepted it): submit it again (<c>PushCredentialsLostException</c>).
    /// </summary>
    public const string PushCredentialsLost = "FARM4241";

    /// <summary>
    /// The registry credentials passed with a submission (header <c>Farm-Registry-Auth</c>) are malformed, or name a
    /// registry no tag of the build pushes to: HTTP 400, nothing starts (<c>InvalidPushCredentialsException</c>).
    /// </summary>
    public const string InvalidPushCredentials = "FARM4242";

    /// <summary>
    /// A tenant's registry auth file (<c>Farm:Coordinator:Tenants:TENANT:RegistryAuthFile</c>) is missing, unreadable or not
    /// a Docker config: the coordinator does not start (<c>TenantRegistrySettingsException</c>).
    /// </summary>
    public const string TenantRegistrySettings = "FARM4243";

    /// <summary>
    /// A job result (<c>LayerBuilt</c>, <c>LayerBuildFailed</c>), a step output line or a worker heartbeat came from an AMQP user that is not the farm's own (the
    /// coordinator's user or one of <c>Farm:Coordinator:Auth:WorkerAmqpUsers</c>), or carried no <c>user_id</c>, on a
    /// coordinator with auth: it is dropped and no build sees it (<c>JobResultNotAuthorizedException</c>).
    /// </summary>
    public const string JobResultNotAuthorized = "FARM4250";

    /// <summary>
    /// The coordinator could not connect to its Redis at start-up: unreachable, a refused user or password, or a TLS
    /// certificate it does not trust; it does not start (<c>RedisConnectionFailedException</c>).
    /// </summary>
    public const string RedisConnectionFailed = "FARM4251";

    /// <summary>
    /// <c>Farm:Coordinator:SiloAddress</c> or <c>AdvertisedAddress</c> is not an IP address, or the silo listens on
    /// every interface with no address to advertise; the coordinator does not start (<c>SiloAddressSettingsException</c>).
    /// </summary>
    public const string SiloAddressSettings = "FARM4260";

    /// <summary>
    /// A request that changes the whole farm (<c>POST /system/prune</c>) came with a token whose role is not
    /// <c>admin</c>: HTTP 403 (<c>AdminRequiredException</c>).
    /// </summary>
    public const string AdminRequired = "FARM4275";

    /// <summary>A <c>POST /system/prune</c> body is malformed: a negative <c>untilSeconds</c> or <c>keepStorage</c> (HTTP 400, <c>InvalidPruneRequestException</c>).</summary>
    public const string InvalidPruneRequest = "FARM4276";

    /// <summary>The local farm was asked to prune its build cache while builds run on it: HTTP 409 (<c>BuildsRunningException</c>).</summary>
    public const string BuildsRunning = "FARM4277";

    /// <summary>
    /// The registry of a shared farm's cache store refused to delete an evicted entry's cache manifest (405 UNSUPPORTED:
    /// <c>storage.delete.enabled</c> is off): the entry is gone, but the registry's garbage collection keeps its layer.
    /// Reported by the prune, not a failure (<c>CacheDeletesRefusedException</c>).
    /// </summary>
    public const string CacheDeletesRefused = "FARM4290";

    /// <summary>
    /// Pushing or deleting the cache manifest of an action cache entry in the cache store's registry failed: a missing
    /// manifest lets the registry's garbage collection drop the layer (a miss later), a manifest left behind keeps it
    /// (<c>CacheReferenceFailedException</c>).
    /// </summary>
    public const string CacheReferenceFailed = "FARM4291";

    // FARM430x: why a step ran (coordinator/Explain, docs/architecture.md "Why a step ran").

    /// <summary>
    /// The record of earlier builds' cache key inputs (Redis, or the local farm's state directory) cannot be read or
    /// written: the build goes on, without saying why its steps ran; logged, never fatal (<c>KeyInputHistoryUnavailableException</c>).
    /// </summary>
    public const string KeyInputHistoryUnavailable = "FARM4300";

    // FARM431x: build secrets and SSH agents (Farm.Coordinator.Auth).

    /// <summary>Secrets or SSH agents were passed with a build to a coordinator that no longer runs it: submit it again (<c>BuildSecretsLostException</c>).</summary>
    public const string BuildSecretsLost = "FARM4310";

    /// <summary>A <c>required=true</c> secret or ssh mount names an id the build was not given (<c>BuildSecretMissingException</c>).</summary>
    public const string BuildSecretMissing = "FARM4311";

    /// <summary>The <c>Farm-Build-Secrets</c> header is malformed or too large, or passes an SSH agent to a coordinator that is not the local farm (<c>InvalidBuildSecretsException</c>).</summary>
    public const string InvalidBuildSecrets = "FARM4312";

    // FARM432x: multi-platform builds (docs/architecture.md "Platforms").

    /// <summary>
    /// A build for several platforms asked for an <c>--output</c> that holds one image (<c>type=docker</c>,
    /// <c>type=local</c>): only <c>type=oci</c> (or <c>--push</c>) takes an image index (<c>MultiPlatformOutputException</c>).
    /// </summary>
    public const string MultiPlatformOutput = "FARM4320";

    /// <summary>
    /// A step missed the cache and is for a platform none of the farm's live workers runs, natively or emulated: start
    /// a worker that runs it, or install qemu-user-static on one (infra/install.sh) (<c>NoWorkerForPlatformException</c>).
    /// </summary>
    public const string NoWorkerForPlatform = "FARM4321";

    // FARM433x: cache mounts across the farm on the coordinator (Farm.Coordinator.Dispatch).

    /// <summary>A cache mount request came from a RabbitMQ user that is not one of the farm's workers (<c>CacheMountRequestNotAuthorizedException</c>).</summary>
    public const string CacheMountRequestNotAuthorized = "FARM4330";

    // FARM434x: a worker fetching its job's build secrets from the coordinator (Farm.Coordinator.Auth).

    /// <summary>A worker's job credential for a build's secrets is unknown, ended with its job, or for another build or secret (<c>JobCredentialRefusedException</c>, HTTP 403).</summary>
    public const string JobCredentialRefused = "FARM4340";

    // FARM435x: the build cache exported to and imported from registries (coordinator/Cache/RegistryBuildCache).

    /// <summary>
    /// A <c>--cache-from</c> reference could not be used (no such manifest, the registry refused or failed, not a farm
    /// build cache): a warning, the build goes on without it, as buildx (<c>CacheImportSkippedException</c>).
    /// </summary>
    public const string CacheImportSkipped = "FARM4350";

    /// <summary>Exporting the build cache to a <c>--cache-to</c> reference failed: the build fails, as buildx's does (<c>CacheExportFailedException</c>).</summary>
    public const string CacheExportFailed = "FARM4351";

    /// <summary>
    /// The layer of an imported cache entry could not be copied from the cache's registry into the farm's store: the step
    /// runs instead; logged, never fatal (<c>CacheImportLayerUnavailableException</c>).
    /// </summary>
    public const string CacheImportLayerUnavailable = "FARM4352";

    // FARM436x: the farm's policy on URL contexts (Farm.Coordinator).

    /// <summary>
    /// A URL context was refused by the farm's policy (<c>Farm:Builds:UrlContexts</c>): URL contexts are off, or the
    /// host resolves to an address the farm does not fetch from (loopback, link-local, its own services, outside the
    /// allowed networks) (<c>UrlContextRefusedException</c>).
    /// </summary>
    public const string UrlContextRefused = "FARM4360";

    // FARM437x: images a client put in the cache store (oci-layout:// contexts through a remote farm; coordinator/Builds/StoredImages.cs).

    /// <summary>
    /// A named context's image in the cache store (<c>NamedContext.StoredImage</c>) is missing, does not match its
    /// digest, has no manifest for the build's platform, or one of its blobs comes without the submission's proof of its
    /// content (naming another tenant's digest): give the build the <c>oci-layout://</c> directory again (<c>StoredImageUnavailableException</c>).
    /// </summary>
    public const string StoredImageUnavailable = "FARM4370";

    // FARM50xx: the local image store of farm pull/images/tag/import (Farm.Oci.Images).

    /// <summary>A name or id matches no local image (<c>NoSuchImageException</c>).</summary>
    public const string NoSuchImage = "FARM5001";

    /// <summary>An id prefix matches more than one local image (<c>AmbiguousImageIdException</c>).</summary>
    public const string AmbiguousImageId = "FARM5002";

    /// <summary>A name cannot name a local image (<c>InvalidImageNameException</c>).</summary>
    public const string InvalidImageName = "FARM5003";

    /// <summary>An archive or rootfs tar given to import or load cannot be read (<c>InvalidImageArchiveException</c>).</summary>
    public const string InvalidImageArchive = "FARM5004";

    /// <summary>Retired: <c>farm import -c</c> changes now fail with <see cref="InvalidConfigChange"/> like <c>farm commit -c</c>; never reused.</summary>
    public const string InvalidImportChange = "FARM5005";

    /// <summary>The local image store's lock is held by another farm process (<c>ImageStoreBusyException</c>).</summary>
    public const string ImageStoreBusy = "FARM5006";

    /// <summary><c>farm rmi</c> would delete an image a container uses; <c>-f</c> untags it and keeps it for the container (<c>ImageInUseException</c>).</summary>
    public const string ImageInUse = "FARM5007";

    // FARM501x and FARM505x: the farm CLI (Farm.Cli).

    /// <summary>A flag or argument of a farm command is wrong (<c>InvalidCliArgumentException</c>).</summary>
    public const string InvalidCliArgument = "FARM5010";

    /// <summary>The local farm must run build steps and its daemon is not root (<c>LocalFarmNeedsRootException</c>).</summary>
    public const string LocalFarmNeedsRoot = "FARM5011";

    /// <summary>The Dockerfile is missing, unreadable or not UTF-8 (<c>DockerfileUnreadableException</c>).</summary>
    public const string DockerfileUnreadable = "FARM5012";

    /// <summary>The remote farm's HTTP API failed or answered something unexpected (<c>RemoteFarmException</c>).</summary>
    public const string RemoteFarm = "FARM5013";

    /// <summary>No build has this id on the farm asked (<c>NoSuchBuildException</c>).</summary>
    public const string NoSuchBuild = "FARM5014";

    /// <summary>A file system, permission, HTTP or invalid-state error of a library, without a Farm code, reached the CLI; the line names the exception type (printed by <c>CliErrors</c>).</summary>
    public const string CliSystemError = "FARM5015";

    /// <summary>Publishing a build to RabbitMQ failed (<c>SubmitFailedException</c>).</summary>
    public const string SubmitFailed = "FARM5016";

    /// <summary>A local farm daemon already runs on this state directory (<c>LocalFarmRunningException</c>).</summary>
    public const string LocalFarmRunning = "FARM5017";

    /// <summary>The local farm's settings are unusable (<c>LocalFarmConfigurationException</c>).</summary>
    public const string LocalFarmConfiguration = "FARM5018";

    /// <summary>The local farm daemon cannot be reached or started, or its socket refuses this user (<c>LocalFarmUnavailableException</c>).</summary>
    public const string LocalFarmUnavailable = "FARM5019";

    /// <summary>A followed build's coordinator went away and no coordinator named answered within two minutes (<c>FollowLostException</c>).</summary>
    public const string FollowLost = "FARM5020";

    /// <summary>The coordinator refused the CLI's token (HTTP 401) or its role (403): set <c>FARM_TOKEN</c> or <c>--token-file</c> (<c>FarmAuthException</c>).</summary>
    public const string FarmAuth = "FARM5030";

    /// <summary>The token file (<c>--token-file</c>, <c>FARM_TOKEN_FILE</c>) or the CA file (<c>FARM_CA</c>) cannot be read (<c>ClientCredentialsException</c>).</summary>
    public const string ClientCredentials = "FARM5031";

    /// <summary><c>farm run</c> or <c>farm exec</c> got flags it does not know, or misses a value (<c>ContainerUsageException</c>).</summary>
    public const string ContainerUsage = "FARM5050";

    /// <summary><c>farm system prune</c> got a <c>--filter</c> it does not know or a <c>--keep-storage</c> that is not a size (<c>InvalidPruneFilterException</c>).</summary>
    public const string InvalidPruneFilter = "FARM5055";

    /// <summary><c>farm build --ulimit</c> is not <c>NAME=SOFT[:HARD]</c> with a limit runc knows (<c>InvalidUlimitException</c>).</summary>
    public const string InvalidUlimit = "FARM5060";

    /// <summary><c>farm build --add-host</c> is not <c>HOST:IP</c> (or <c>HOST=IP</c>) with an IP address; <c>host-gateway</c> is refused (<c>InvalidAddHostException</c>).</summary>
    public const string InvalidAddHost = "FARM5061";

    /// <summary><c>farm build --build-context</c> is not <c>NAME=DIR|docker-image://REF|oci-layout://PATH[@DIGEST]</c> (<c>InvalidBuildContextException</c>).</summary>
    public const string InvalidBuildContext = "FARM5062";

    /// <summary>A URL build context could not be fetched: the host did not answer, or answered with an HTTP error (<c>RemoteContextUnreachableException</c>).</summary>
    public const string RemoteContextUnreachable = "FARM5063";

    /// <summary>A git build context needs the <c>git</c> command, and it is not installed (<c>GitUnavailableException</c>).</summary>
    public const string GitUnavailable = "FARM5064";

    /// <summary>git could not fetch a git build context at the ref asked, or its <c>:subdir</c> is not a directory of it; the message quotes git (<c>GitContextException</c>).</summary>
    public const string GitContextFailed = "FARM5065";

    /// <summary>A build context on standard input (<c>farm build -</c>) or from a URL is neither a tar archive (plain, gzip, bzip2 or xz) nor a text Dockerfile (<c>ContextArchiveException</c>).</summary>
    public const string NotAContextArchive = "FARM5066";

    /// <summary><c>farm build -f - -</c>: standard input cannot be both the Dockerfile and the context (<c>StdinTwiceException</c>).</summary>
    public const string StdinTwice = "FARM5067";

    /// <summary><c>farm build --shm-size</c> is not a size (<c>64m</c>, <c>1g</c>, bytes), or <c>--network</c> is not <c>default</c>, <c>none</c> or <c>host</c> (<c>InvalidBuildSandboxException</c>).</summary>
    public const string InvalidBuildSandbox = "FARM5068";

    // FARM509x: build secrets and SSH agents in the farm command (Farm.Cli).

    /// <summary>A <c>--secret</c> or <c>--ssh</c> value is malformed, or its file, variable or socket cannot be read.</summary>
    public const string InvalidSecretFlag = "FARM5090";

    /// <summary>Secrets or an SSH agent would go to a farm over plain HTTP beyond loopback, or an SSH agent to a remote farm.</summary>
    public const string SecretsRefused = "FARM5091";

    // FARM508x: farm explain (Farm.Cli).

    /// <summary><c>farm explain BUILD STEP</c> names a step the build has no explanation for: not a layer step of it, or one that came from the cache (<c>NoSuchStepException</c>).</summary>
    public const string NoSuchStep = "FARM5080";

    // FARM510x-511x: farm run mounts, farm history, credential helpers (Farm.Containers, Farm.Oci).

    /// <summary>A <c>farm run -v</c> or <c>--mount</c> value is malformed, names a volume (farm keeps none), or its bind source is unusable (<c>InvalidMountException</c>).</summary>
    public const string InvalidMount = "FARM5100";

    /// <summary>A docker credential helper the Docker config names (<c>credsStore</c>, <c>credHelpers</c>) is not on PATH, has a name that is not plain, failed or did not answer (<c>CredentialHelperException</c>).</summary>
    public const string CredentialHelper = "FARM5101";
}
