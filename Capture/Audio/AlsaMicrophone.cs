using System.Runtime.InteropServices;

namespace Assistant.Capture.Audio;

/// <summary>
/// The microphone on Linux through ALSA (libasound.so.2 by P/Invoke): 16 kHz mono 16-bit capture from a PCM
/// device ("default" goes through ALSA's plug layer, which converts from what the hardware offers),
/// handed over as floats in [-1, 1]. An overrun is recovered (and counted); a device that cannot be opened
/// or vanishes is a one-line <see cref="CaptureException"/>. Owns the PCM handle.
/// </summary>
public sealed class AlsaMicrophone : IMicrophone
{
    private const int StreamCapture = 1, FormatS16Le = 2, AccessRwInterleaved = 3;
    private readonly AlsaPcmHandle _pcm;  // owned; closed by Dispose, or by the finalizer if Dispose never ran
    private short[] _buffer = [];

    /// <summary>Opens an ALSA capture device; a missing or busy one is a <see cref="CaptureException"/>.</summary>
    /// <param name="device">ALSA device name ("default", "hw:1", a plugin).</param>
    /// <param name="sampleRate">Samples per second delivered (mono floats).</param>
    public AlsaMicrophone(string device = "default", int sampleRate = AudioFile.SampleRate)
    {
        if (!OperatingSystem.IsLinux()) throw new CaptureException("the ALSA microphone is Linux only");
        Device = device;
        int rc;
        try
        {
            // alsa-lib prints its own diagnostics to stderr (several lines for a missing card); errors are
            // reported here as one line instead, so its printer is replaced by one that prints nothing.
            Native.SilenceLibraryMessages();
            rc = Native.snd_pcm_open(out _pcm, device, StreamCapture, 0);
        }
        catch (DllNotFoundException)
        {
            throw new CaptureException("libasound.so.2 is missing: apt-get install libasound2");
        }
        if (rc < 0)
        {
            _pcm.SetHandleAsInvalid();  // nothing was opened: there is nothing to close
            throw new CaptureException($"cannot open microphone '{device}': {Native.Error(rc)}");
        }
        rc = Native.snd_pcm_set_params(_pcm, FormatS16Le, AccessRwInterleaved, 1, (uint)sampleRate, 1, 100_000);
        if (rc < 0)
        {
            _pcm.Dispose();
            throw new CaptureException($"microphone '{device}' cannot record 16-bit mono at {sampleRate} Hz: {Native.Error(rc)}");
        }
    }

    /// <summary>The device name as opened.</summary>
    public string Device { get; }

    /// <summary>Overruns recovered so far (the reader fell behind and samples were lost).</summary>
    public int Overruns { get; private set; }

    /// <summary>Fills <paramref name="destination"/> with the next samples, blocking until they are recorded.</summary>
    public unsafe void Read(Span<float> destination)
    {
        ObjectDisposedException.ThrowIf(_pcm.IsClosed, this);
        if (_buffer.Length < destination.Length) _buffer = new short[destination.Length];
        int done = 0;
        while (done < destination.Length)
        {
            long got;
            fixed (short* p = &_buffer[done]) got = Native.snd_pcm_readi(_pcm, p, (ulong)(destination.Length - done));
            if (got < 0)
            {
                int rc = Native.snd_pcm_recover(_pcm, (int)got, 1);
                if (rc < 0) throw new CaptureException($"microphone '{Device}' failed: {Native.Error((int)got)}");
                Overruns++;
                continue;
            }
            done += (int)got;
        }
        for (int i = 0; i < destination.Length; i++) destination[i] = _buffer[i] / 32768f;
    }

    /// <summary>Closes the device.</summary>
    public void Dispose() => _pcm.Dispose();

    /// <summary>An ALSA PCM handle (snd_pcm_t*), closed once by snd_pcm_close.</summary>
    private sealed class AlsaPcmHandle() : SafeHandle(IntPtr.Zero, ownsHandle: true)
    {
        public override bool IsInvalid => handle == IntPtr.Zero;

        protected override bool ReleaseHandle() => Native.snd_pcm_close(handle) >= 0;
    }

    private static unsafe class Native
    {
        private const string Lib = "libasound.so.2";

        [DllImport(Lib)] public static extern int snd_pcm_open(out AlsaPcmHandle pcm, [MarshalAs(UnmanagedType.LPUTF8Str)] string name, int stream, int mode);
        [DllImport(Lib)] public static extern int snd_pcm_set_params(AlsaPcmHandle pcm, int format, int access, uint channels, uint rate, int softResample, uint latencyUs);
        [DllImport(Lib)] public static extern long snd_pcm_readi(AlsaPcmHandle pcm, short* buffer, ulong frames);
        [DllImport(Lib)] public static extern int snd_pcm_recover(AlsaPcmHandle pcm, int err, int silent);
        [DllImport(Lib)] public static extern int snd_pcm_close(IntPtr pcm);
        [DllImport(Lib)] private static extern IntPtr snd_strerror(int errnum);
        [DllImport(Lib)] private static extern int snd_lib_error_set_handler(delegate* unmanaged[Cdecl]<IntPtr, int, IntPtr, int, IntPtr, void> handler);

        /// <summary>alsa-lib's handler is variadic (file, line, function, err, fmt, ...); the extra arguments are ignored.</summary>
        [UnmanagedCallersOnly(CallConvs = [typeof(System.Runtime.CompilerServices.CallConvCdecl)])]
        private static void Silent(IntPtr file, int line, IntPtr function, int err, IntPtr format) { }

        public static void SilenceLibraryMessages() => snd_lib_error_set_handler(&Silent);

        public static string Error(int rc) => Marshal.PtrToStringUTF8(snd_strerror(rc)) ?? $"error {rc}";
    }
}
